-- The demo database "shop" for compose.yaml: run once by the postgres image, as POSTGRES_USER (backup) in
-- POSTGRES_DB (shop), when its data volume is empty. A few tables with rows, so each backup has something to dump.

CREATE TABLE customers (
  id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email      text NOT NULL UNIQUE,
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  title       text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0)
);

CREATE TABLE orders (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  placed_at   timestamptz NOT NULL DEFAULT now(),
  status      text NOT NULL DEFAULT 'paid' CHECK (status IN ('paid', 'shipped', 'cancelled'))
);

CREATE TABLE order_items (
  order_id   integer NOT NULL REFERENCES orders (id),
  product_id integer NOT NULL REFERENCES products (id),
  quantity   integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, product_id)
);

INSERT INTO customers (email, name) VALUES
  ('ada@example.com', 'Ada Lovelace'),
  ('grace@example.com', 'Grace Hopper'),
  ('alan@example.com', 'Alan Turing'),
  ('edsger@example.com', 'Edsger Dijkstra');

INSERT INTO products (sku, title, price_cents) VALUES
  ('MUG-01', 'Coffee mug', 1200),
  ('TEE-02', 'T-shirt', 2500),
  ('STK-03', 'Sticker pack', 400),
  ('BAG-04', 'Tote bag', 1800);

-- 500 orders spread over the customers and the last 90 days, each with one or two products.
INSERT INTO orders (customer_id, placed_at, status)
SELECT 1 + (n % 4), now() - (n % 90) * interval '1 day', (ARRAY['paid', 'shipped', 'cancelled'])[1 + n % 3]
FROM generate_series(1, 500) AS n;

INSERT INTO order_items (order_id, product_id, quantity)
SELECT id, 1 + (id % 4), 1 + (id % 3) FROM orders;

INSERT INTO order_items (order_id, product_id, quantity)
SELECT id, 1 + ((id + 1) % 4), 1 FROM orders WHERE id % 2 = 0;
