-- Diagnoses of contacts with their codes: the Condition each Encounter.diagnosis points to gives the SKS code
-- (or, for other generators' data, the first code in any system).
SELECT
    d.*,
    c.sks_code,
    c.code,
    c.code_system,
    c.category AS condition_category
FROM encounter_diagnosis AS d
LEFT JOIN condition AS c ON c.id = d.condition_id
