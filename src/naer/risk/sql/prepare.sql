-- The diagnoses every risk feature reads, made once per warehouse (after the indicators' shared tables): for
-- each citizen and each condition of the code schemes in table risk_codes (scheme, condition, prefix,
-- weight, replaces), the first day it is known. A chronic condition is known from its onset (or, without
-- one, from the day it was recorded); a contact's diagnosis from the day the contact began. The features of
-- a reference day then keep the conditions known before that day.
CREATE OR REPLACE TEMP TABLE risk_dx AS
WITH dx AS (
    SELECT c.patient_id,
           coalesce(c.sks_code, CASE WHEN c.code_system ILIKE '%icd-10%' THEN 'D' || upper(replace(c.code, '.', '')) END)
               AS code,
           TRY_CAST(left(coalesce(c.onset, c.recorded_date), 10) AS DATE) AS day
    FROM condition AS c
    WHERE c.category = 'problem-list-item'
    UNION ALL
    SELECT d.patient_id,
           coalesce(d.sks_code, CASE WHEN d.code_system ILIKE '%icd-10%' THEN 'D' || upper(replace(d.code, '.', '')) END),
           TRY_CAST(left(e."start", 10) AS DATE)
    FROM encounter_diagnosis_code AS d
    JOIN encounter AS e ON e.id = d.encounter_id
),
first_seen AS (  -- distinct codes are few: match them against the prefixes once, then join back by equality
    SELECT patient_id, code, min(day) AS day FROM dx
    WHERE patient_id IS NOT NULL AND code IS NOT NULL AND day IS NOT NULL
    GROUP BY patient_id, code
),
mapped AS (
    SELECT c.code, k.scheme, k.condition, k.weight, k.replaces
    FROM (SELECT DISTINCT code FROM first_seen) AS c
    JOIN risk_codes AS k ON starts_with(c.code, k.prefix)
)
SELECT f.patient_id, m.scheme, m.condition, any_value(m.weight) AS weight, any_value(m.replaces) AS replaces,
       min(f.day) AS day
FROM first_seen AS f JOIN mapped AS m ON m.code = f.code
GROUP BY f.patient_id, m.scheme, m.condition
;
-- Contacts as days, so that each reference day's windows are cheap date comparisons.
CREATE OR REPLACE TEMP TABLE risk_contact AS
SELECT patient_id, class, contact_type,
       TRY_CAST(left("start", 10) AS DATE) AS day,
       TRY_CAST(left("end", 10) AS DATE) AS end_day
FROM encounter
WHERE patient_id IS NOT NULL AND TRY_CAST(left("start", 10) AS DATE) IS NOT NULL
;
-- Home measurements as days (weight in kg, oxygen saturation in %), for trends before a day.
CREATE OR REPLACE TEMP TABLE risk_measurement AS
SELECT patient_id, code, value, TRY_CAST(left(effective, 10) AS DATE) AS day
FROM home_measurement
WHERE patient_id IS NOT NULL AND value IS NOT NULL AND code IN ('29463-7', '59408-5')
  AND TRY_CAST(left(effective, 10) AS DATE) IS NOT NULL
