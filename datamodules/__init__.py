"""Everything that turns files into batches and batches back into files."""
