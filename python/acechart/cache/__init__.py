"""Cache tiers: the block store of raw samples and the retention policy."""
