"""Population risk stratification (issue 6): features as of a reference day, outcomes, models, worklists."""
