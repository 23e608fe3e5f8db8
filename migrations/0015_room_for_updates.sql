-- +goose Up
-- A wallet's or a partner's account is updated by every transaction that
-- moves it. Packed full, a page has no room for the row's new version, so
-- the update goes to another page and adds an entry to the primary key
-- instead of staying on its page as a HOT update. Half of each new page is
-- left for them, as 0004 did for transactions. (Pages written before this
-- migration keep their packing.) Measured on 10,000-item batches to
-- existing wallets, applied in groups of 1,000, the fill factor switched
-- back and forth between runs: HOT updates 4–9% → 99.8% of the accounts'
-- updates, the group's update of its accounts 5–7 → 3–4 ms, 202 to
-- completed 445–555 → 375–385 ms.
ALTER TABLE ledger_accounts SET (fillfactor = 50);

-- +goose Down
ALTER TABLE ledger_accounts RESET (fillfactor);
