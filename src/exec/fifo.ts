/**
 * Named pipes (FIFOs) for streams that flow from program to program without passing through this process: a
 * private folder (0700) holds them, each made 0600: `secret-<pid>-fifo-*` in the state folder's private `tmp/`, where
 * startup recovery removes the folders of dead processes (apply/recovery.ts), or under the system's temporary folder. `hold()` opens one
 * read-write, which never blocks on Linux and makes this process one more writer (and reader) of it: the program
 * reading it does not see its end while it is held, whatever the writers do, so a stream is only ever ended on
 * purpose (see apply/pipeline.ts). The folder goes with `remove()`, which every user calls in a `finally`.
 */
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { environmentError, errnoInText } from "../environment-errors.ts";
import { EnvironmentError } from "../errors.ts";
import { makeFifosInProcess } from "../runtime/mkfifo.ts";
import { run, type RunResult } from "./run.ts";

export class FifoFolder {
  private held = new Set<number>();

  private constructor(readonly dir: string) {}

  /** A new private folder for the FIFOs of one stream, in `privateDir` when given. */
  static create(privateDir?: string): FifoFolder {
    const parent = privateDir ?? tmpdir();
    try {
      if (privateDir) mkdirSync(privateDir, { recursive: true, mode: 0o700 });
      // mkdtemp makes the folder 0700. The pid in the name tells whose folder it is (a leftover's owner, and a test's).
      const dir = mkdtempSync(
        privateDir ? join(privateDir, `secret-${process.pid}-fifo-`) : join(tmpdir(), `backupctl-fifo-${process.pid}-`),
      );
      chmodSync(dir, 0o700);
      return new FifoFolder(dir);
    } catch (error) {
      throw environmentError(error, "cannot make a private folder for the stream's FIFOs in", parent) ?? error;
    }
  }

  /** Makes FIFOs named `names` in the folder (mode 0600) and returns their paths. */
  async make(...names: string[]): Promise<string[]> {
    const paths = names.map((name) => join(this.dir, name));
    const made = await makeFifosInProcess(paths);
    if (made === paths.length) return paths;
    const result = await run(["mkfifo", "-m", "600", "--", ...paths.slice(made)]);
    if (result.code !== 0) {
      const doing = "cannot make the FIFOs of the stream in";
      const cause = { code: errnoInText(result.stderr) ?? "EIO", message: result.stderrTail };
      throw environmentError(cause, doing, this.dir) ??
        new EnvironmentError(
          this.dir,
          cause.code,
          `${doing} ${this.dir}: ${result.stderrTail || `mkfifo exited with ${result.code ?? result.signal}`}; ` +
            "check that the folder is on a local file system that supports named pipes",
        );
    }
    return paths;
  }

  /**
   * Opens `path` read-write and keeps it open until the returned function is called: until then its reader never
   * sees the end of the stream. Calling it again does nothing.
   */
  hold(path: string): () => void {
    const fd = openSync(path, "r+");
    this.held.add(fd);
    return () => {
      if (!this.held.delete(fd)) return;
      closeSync(fd);
    };
  }

  /** Closes what is still held and removes the folder and everything in it. */
  remove(): void {
    for (const fd of this.held) {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
    }
    this.held.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The tap: a small perl program (perl-base is on every Debian) that copies its stdin to the FIFO `output` in blocks
 * of up to 1 MiB, with 1 MiB pipe buffers, counting the bytes and, with `edges`, keeping the first and last 64 KiB
 * (for a source's format check). It opens `output` itself: its stdout is kept by backupctl and gets, at the end, one
 * line `COUNT HEAD TAIL` (hex), so no byte of the dump is ever written to a file; before that, once a second, a
 * line `+COUNT` for live progress. Stopped by SIGTERM, it still prints the count so far. See {@link parseTap}.
 * With `hash` (a command source's backup), it also computes the SHA-256 of what it copied and prints it (`=HEX`) before the count line, when
 * Digest::SHA loads: it is in libperl (the `perl` package), not in perl-base, so on a host with perl-base only the
 * tap counts and no checksum is recorded (a drill then compares the size alone).
 */
const tapScript = String.raw`use strict; use warnings;
my ($path, $edges, $hash) = @ARGV;
my ($edge, $n, $head, $tail, $buf) = (65536, 0, "", "", "");
my $sha = $hash ? eval { require Digest::SHA; Digest::SHA->new(256) } : undef;
$| = 1;
$SIG{TERM} = sub { print "$n\n"; exit 143 };
open(my $out, ">", $path) or die "tap: $path: $!\n";
binmode STDIN; binmode $out;
fcntl(STDIN, 1031, 1048576); fcntl($out, 1031, 1048576);
$SIG{ALRM} = sub { print "+$n\n"; alarm 1 }; alarm 1;
while (1) {
  my $r = sysread(STDIN, $buf, 1048576);
  if (!defined $r) { next if $!{EINTR}; die "tap: read: $!\n" }
  last unless $r;
  $n += $r;
  $sha->add($buf) if $sha;
  if ($edges) {
    $head .= substr($buf, 0, $edge - length $head) if length $head < $edge;
    if ($r >= $edge) { $tail = substr($buf, $r - $edge) }
    else { $tail .= $buf; substr($tail, 0, length($tail) - $edge, "") if length $tail > $edge }
  }
  for (my $o = 0; $o < $r;) {
    my $w = syswrite($out, $buf, $r - $o, $o);
    if (!defined $w) { next if $!{EINTR}; die "tap: write: $!\n" }
    $o += $w;
  }
}
alarm 0;
close($out) or die "tap: $path: $!\n";
print "=", $sha->hexdigest, "\n" if $sha;
print "$n ", unpack("H*", $head), " ", unpack("H*", $tail), "\n";
`;

/**
 * The argv of a tap writing into `output`; `edges` keeps the first and last 64 KiB for a format check, `hash` computes
 * the SHA-256 of the stream (when Digest::SHA is there).
 */
export function tapArgv(output: string, edges: boolean, hash = false): string[] {
  return ["perl", "-e", tapScript, "--", output, edges ? "1" : "0", hash ? "1" : "0"];
}

export interface TapReport {
  /** Bytes the tap copied. */
  bytes: number;
  /** The first and last 64 KiB, when asked for and the tap reached the end of its input. */
  head?: Uint8Array;
  tail?: Uint8Array;
  /** The SHA-256 (hex) of what it copied, when asked for, Digest::SHA loaded and the tap reached the end. */
  sha256?: string;
}

/** What a tap printed: its count (even when stopped), and the edges it kept once it ended normally. */
export function parseTap(stdout: string): TapReport | undefined {
  const lines = stdout.trim().split("\n");
  const line = lines.filter((text) => !text.startsWith("+") && !text.startsWith("=")).at(-1) ?? "";
  const digest = lines.map((text) => /^=([0-9a-f]{64})$/.exec(text)?.[1]).findLast((hex) => hex !== undefined);
  const match = /^(\d+)(?: ([0-9a-f]*) ([0-9a-f]*))?$/.exec(line);
  if (!match) return undefined;
  const report: TapReport = { bytes: Number(match[1]) };
  if (match[2] !== undefined) {
    report.head = Buffer.from(match[2], "hex");
    report.tail = Buffer.from(match[3], "hex");
  }
  if (digest !== undefined) report.sha256 = digest;
  return report;
}

/**
 * The gate: a small perl program that runs restic (`argv`) with its standard input read from the FIFO `input`, and
 * decides when restic may see the end of that stream. It holds `input` open as a writer from before restic starts,
 * so restic cannot see an end of stream the gate did not allow; it lets go only when backupctl writes `commit` on
 * the gate's standard input. When that input ends without the word — backupctl decided against the stream, or
 * backupctl itself is gone (killed with SIGKILL, say, while the producer and the taps carry on) — the gate stops
 * restic with SIGINT first (restic then removes its lock and stores no snapshot), and lets go only once restic is
 * gone. So a snapshot of a stream exists only where backupctl said the stream was complete, whatever happens to
 * backupctl. The gate exits as restic did (its code, or 128 + the signal). It runs as the leader of a process group
 * of its own (exec/run.ts): restic is stopped by SIGINT to that group, so a wrapper around restic cannot keep it
 * running; the gate itself ignores SIGINT and turns SIGTERM/SIGHUP into that SIGINT, from its first line on (a
 * signal before restic is started ends the gate with nothing started). restic's output is relayed by the gate, never written to backupctl's pipes
 * directly: should backupctl be gone, restic must not die of a broken pipe before it removed its lock (Go programs
 * die of SIGPIPE on their standard output), and the gate ignores the broken pipe itself. Its first line on stdout, `gate: holding`, says it holds the FIFO: until
 * then the stream must not start (a short dump could come and go before anyone held it, and a FIFO nobody holds
 * loses its data); restic's own output follows.
 */
const gateScript = String.raw`use strict; use warnings;
# No POSIX module (it takes longer to load than the rest of the gate): WNOHANG is 1, and the status is decoded below.
my $WNOHANG = 1;
my ($input, @argv) = @ARGV;
$SIG{PIPE} = "IGNORE";
my $group = getpgrp();
my ($pid, $signalled);
my $stop = sub { $signalled = 1; kill "INT", -$group if $pid };
$SIG{INT} = "IGNORE";
$SIG{$_} = $stop for qw(TERM HUP);
open(my $hold, "+<", $input) or die "gate: $input: $!\n";
syswrite(STDOUT, "gate: holding\n");
pipe(my $outR, my $outW) or die "gate: pipe: $!\n";
pipe(my $errR, my $errW) or die "gate: pipe: $!\n";
exit 143 if $signalled;
$pid = fork() // die "gate: fork: $!\n";
if ($pid == 0) {
  open(STDIN, "<", $input) or die "gate: $input: $!\n";
  open(STDOUT, ">&", $outW) or die "gate: stdout: $!\n";
  open(STDERR, ">&", $errW) or die "gate: stderr: $!\n";
  close($_) for ($hold, $outR, $errR, $outW, $errW);
  $SIG{$_} = "DEFAULT" for qw(PIPE INT);
  exec { $argv[0] } @argv or die "gate: cannot run $argv[0]: $!\n";
}
close($outW); close($errW);
# restic's end interrupts the wait below at once (an empty handler: the loop's waitpid reaps it).
$SIG{CHLD} = sub {};
# A TERM between the handlers' setting and the fork stops restic as soon as it exists.
kill "INT", -$group if $signalled;
my %relay = (fileno($outR) => [$outR, \*STDOUT], fileno($errR) => [$errR, \*STDERR]);
my ($word, $control, $status, $stoppedAt, $exitedAt) = ("", 1, undef, undef, undef);
while (!defined $status || (%relay && time - $exitedAt < 3)) {
  if (!defined $status && waitpid($pid, $WNOHANG) == $pid) { $status = $?; $exitedAt = time }
  if (defined $stoppedAt && !defined $status && time - $stoppedAt >= 15) { kill "KILL", -$group }
  my $bits = "";
  vec($bits, fileno(STDIN), 1) = 1 if $control;
  vec($bits, $_, 1) = 1 for keys %relay;
  # Nothing left to read (restic closed its output and is ending): poll its exit closely, not every 0.1 s.
  my $n = select(my $ready = $bits, undef, undef, $bits =~ /[^\0]/ ? 0.1 : 0.005);
  next unless defined $n && $n > 0;
  for my $fd (keys %relay) {
    next unless vec($ready, $fd, 1);
    my ($from, $to) = @{$relay{$fd}};
    my $got = sysread($from, my $buf, 65536);
    next if !defined $got && $!{EINTR};
    if (!$got) { delete $relay{$fd}; next }
    syswrite($to, $buf);
  }
  next unless $control && vec($ready, fileno(STDIN), 1);
  my $got = sysread(STDIN, my $buf, 64);
  next if !defined $got && $!{EINTR};
  if ($got) { $word .= $buf; next unless $word =~ /\n/ }
  $control = 0;
  if ($word eq "commit\n") { close($hold); next }
  syswrite(STDERR, "gate: the stream was not declared complete: restic stopped, no snapshot stored\n");
  $stop->();
  $stoppedAt = time;
}
waitpid($pid, 0) unless defined $status;
$status //= $?;
close($hold);
exit(($status & 127) ? 128 + ($status & 127) : $status >> 8);
`;

/**
 * The argv of a gate running restic (`argv`) on the stream in the FIFO `input`; write `commit\n` on its standard
 * input to let restic see the end of the stream, or end that input to have restic stopped before it stores anything.
 */
export function gateArgv(input: string, argv: string[]): string[] {
  return ["perl", "-e", gateScript, "--", input, ...argv];
}

/**
 * Stops a process with `signal`, then SIGKILL if it is still running after `graceMs`, and waits for it to exit:
 * when this resolves, the process can no longer read anything.
 */
export async function stopAndWait(
  process: { kill(signal?: NodeJS.Signals): void; result: Promise<RunResult> },
  signal: NodeJS.Signals,
  graceMs = 15_000,
): Promise<RunResult> {
  process.kill(signal);
  const timer = setTimeout(() => process.kill("SIGKILL"), graceMs);
  try {
    return await process.result;
  } finally {
    clearTimeout(timer);
  }
}
