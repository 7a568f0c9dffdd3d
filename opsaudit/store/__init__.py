"""The audit store: runs, check results, findings and their events, samples, reports, outbox."""
