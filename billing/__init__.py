"""Money: token counting, exact pricing in nano-USD, holds, settlement and the ledger."""
