-- Each migration runs in one transaction together with its row in the tracking table.
CREATE TABLE accounts (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  owner TEXT NOT NULL,
  balance DECIMAL(12, 2) NOT NULL DEFAULT 0
);

-- DOWN
DROP TABLE accounts;
