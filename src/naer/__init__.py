"""Nær: an open, FHIR-native platform for the Danish near and coherent health system."""

__version__ = "0.1.0"
