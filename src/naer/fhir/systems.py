"""Code-system and identifier-system URIs used across Nær, in one place.

Danish systems follow HL7 Denmark's DK-core (aliases.fsh) and MedCom; systems of Nær's own use the
reserved ``example.org`` domain until the project has an official canonical base.
"""

CPR = "urn:oid:1.2.208.176.1.2"
SOR = "urn:oid:1.2.208.176.1.1"
SKS = "urn:oid:1.2.208.176.2.4"
MUNICIPALITY_CODES = "http://hl7.dk/fhir/core/CodeSystem/dk-core-municipality-codes"
MUNICIPALITY_EXTENSION = "http://hl7.dk/fhir/core/StructureDefinition/dk-core-municipalityCodes"
REGION_CODES = "http://hl7.dk/fhir/core/CodeSystem/dk-core-regional-subdivision-codes"
REGION_EXTENSION = "http://hl7.dk/fhir/core/StructureDefinition/dk-core-RegionalSubDivisionCodes"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/admit-source"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"

NAER = "https://naer.example.org/fhir"
CONTACT_TYPE = f"{NAER}/CodeSystem/contact-type"
SECTOR = f"{NAER}/CodeSystem/sector"
ORG_KIND = f"{NAER}/CodeSystem/organization-kind"
EDUCATION = f"{NAER}/CodeSystem/education-group"
INCOME = f"{NAER}/CodeSystem/income-group"
SOCIAL = f"{NAER}/CodeSystem/social-fact"
SECTOR_EXTENSION = f"{NAER}/StructureDefinition/sector"

# FHIR's own tag for test data: every synthetic resource carries it in meta.tag.
SYNTHETIC_TAG = {"system": ACT_REASON, "code": "HTEST"}  # "test health data"
