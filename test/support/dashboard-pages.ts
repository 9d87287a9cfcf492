/**
 * The dashboard pages pictured in docs/dashboard.md and what each one's picture shows: its headings, its tables'
 * column headers and the stylesheet's version. `deno task screenshots` (scripts/screenshots.ts) takes the pictures and
 * writes this description beside them (docs/images/dashboard.json); the browser test describes the pages anew and
 * compares, so a page whose layout changed without new pictures fails with the command to run.
 */
import { assetPath } from "../../src/web/assets.ts";
import type { Visit } from "./browser.ts";

export interface PicturedPage {
  /** The file under docs/images. */
  file: string;
  /** The page's path; `{run}` is the last run of project shop. */
  path: string;
  width: number;
  height: number;
}

export const picturedPages: PicturedPage[] = [
  { file: "dashboard-projects.png", path: "/", width: 1280, height: 800 },
  { file: "dashboard-project.png", path: "/projects/shop", width: 1280, height: 800 },
  { file: "dashboard-run.png", path: "/runs/{run}", width: 1280, height: 800 },
  { file: "dashboard-plan.png", path: "/plan", width: 1280, height: 800 },
  { file: "dashboard-projects-phone.png", path: "/", width: 390, height: 844 },
  { file: "dashboard-project-phone.png", path: "/projects/shop", width: 390, height: 844 },
  { file: "dashboard-run-phone.png", path: "/runs/{run}", width: 390, height: 844 },
  { file: "dashboard-plan-phone.png", path: "/plan", width: 390, height: 844 },
];

/** What a picture of a page shows that the code decides: headings and column headers (run ids made generic). */
export interface PageOutline {
  file: string;
  headings: string[];
  columns: string[];
}

export interface PicturesManifest {
  stylesheet: string;
  pages: PageOutline[];
}

const generic = (text: string) => text.replace(/\b\d{8}T\d{6}Z-[0-9a-f]{6}\b/g, "RUN").replace(/\s+/g, " ").trim();

export async function outline(page: Visit, pictured: PicturedPage): Promise<PageOutline> {
  return {
    file: pictured.file,
    headings: (await page.texts("h1, h2")).map(generic),
    columns: (await page.texts("thead th")).map((text) => generic(text).toLowerCase()),
  };
}

/** The stylesheet's version (its content hash, as the pages link it). */
export function stylesheetVersion(): string {
  return assetPath("dashboard.css").replace(/^.*\?v=/, "");
}
