"""Synthetic Danish population as FHIR R4 bulk NDJSON (`naer synth`)."""
