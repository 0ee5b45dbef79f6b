"""What the torch side computes of a trace where its tensors live (:mod:`.stats`: summaries on the device)."""
