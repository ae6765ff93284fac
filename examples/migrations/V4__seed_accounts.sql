INSERT INTO accounts (owner, balance, email) VALUES
  ('alice', 100.00, 'alice@example.com'),
  ('bob', 50.00, 'bob@example.com');

-- DOWN
DELETE FROM accounts WHERE email IN ('alice@example.com', 'bob@example.com');
