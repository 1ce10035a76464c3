"""FHIR R4 base layer: code systems, Danish identifiers and validation. Imports nothing of ours."""
