-- Features of every citizen living in the area on the reference day $reference, from data before that day
-- only (the test suite proves it: data after the day changes nothing), and the outcomes in the year after.
-- Reads the indicators' shared tables (span, admission) and the views. Charlson conditions come from table
-- charlson_codes (condition, prefix, weight, replaces).
WITH person AS (
    SELECT s.patient_id, s.municipality_code, s.sex, s.gp_clinic_id, s.education, s.birth
    FROM span AS s
    WHERE s.s <= CAST($reference AS DATE) AND CAST($reference AS DATE) < s.e
    QUALIFY row_number() OVER (PARTITION BY s.patient_id ORDER BY s.s DESC) = 1
),
before AS (  -- admissions that began before the day
    SELECT a.* FROM admission AS a WHERE a.admitted < CAST($reference AS DATE)
),
history AS (
    SELECT patient_id,
           count(*) FILTER (WHERE acute AND admitted >= CAST($reference AS DATE) - 182) AS acute_admissions_6m,
           count(*) FILTER (WHERE acute AND admitted >= CAST($reference AS DATE) - 365) AS acute_admissions_12m,
           CAST(sum(bed_days) FILTER (WHERE discharged < CAST($reference AS DATE)
                                   AND discharged >= CAST($reference AS DATE) - 365) AS INTEGER) AS bed_days_12m,
           CAST($reference AS DATE) - max(discharged) FILTER (WHERE discharged < CAST($reference AS DATE))
               AS days_since_discharge
    FROM before GROUP BY patient_id
),
contacts AS (
    SELECT patient_id,
           count(*) FILTER (WHERE class = 'EMER' OR contact_type = 'ed-visit') AS ed_visits_12m,
           count(*) FILTER (WHERE contact_type LIKE 'gp-%') AS gp_contacts_12m,
           count(*) FILTER (WHERE contact_type = 'acute-bed') AS acute_bed_stays_12m
    FROM encounter
    WHERE "start" >= strftime(CAST($reference AS DATE) - 365, '%Y-%m-%d')
      AND "start" < strftime(CAST($reference AS DATE), '%Y-%m-%d')
    GROUP BY patient_id
),
home_care AS (  -- home care that had begun and not ended by the day
    SELECT DISTINCT patient_id FROM encounter
    WHERE contact_type = 'home-care'
      AND "start" < strftime(CAST($reference AS DATE), '%Y-%m-%d')
      AND ("end" IS NULL OR "end" >= strftime(CAST($reference AS DATE), '%Y-%m-%d'))
),
diagnosis AS (  -- every diagnosis known before the day: chronic conditions by onset, contacts' by start
    SELECT c.patient_id, coalesce(c.sks_code, 'D' || upper(replace(c.code, '.', ''))) AS code
    FROM condition AS c
    WHERE c.category = 'problem-list-item'
      AND coalesce(c.onset, c.recorded_date) < strftime(CAST($reference AS DATE), '%Y-%m-%d')
    UNION ALL
    SELECT d.patient_id, coalesce(d.sks_code, 'D' || upper(replace(d.code, '.', '')))
    FROM encounter_diagnosis_code AS d
    JOIN encounter AS e ON e.id = d.encounter_id
    WHERE e."start" < strftime(CAST($reference AS DATE), '%Y-%m-%d')
),
found AS (
    SELECT DISTINCT dx.patient_id, k.condition, k.weight, k.replaces
    FROM diagnosis AS dx JOIN charlson_codes AS k ON starts_with(dx.code, k.prefix)
),
charlson AS (  -- the graver form of a condition replaces the milder one
    SELECT f.patient_id, CAST(sum(f.weight) AS INTEGER) AS charlson_index, count(*) AS charlson_conditions,
           list(f.condition ORDER BY f.condition) AS conditions
    FROM found AS f
    WHERE NOT EXISTS (SELECT 1 FROM found AS g WHERE g.patient_id = f.patient_id AND g.replaces = f.condition)
    GROUP BY f.patient_id
),
alone AS (
    SELECT patient_id, arg_max(value_boolean, effective) AS lives_alone
    FROM social_fact
    WHERE fact = 'living-alone' AND effective < strftime(CAST($reference AS DATE), '%Y-%m-%d')
    GROUP BY patient_id
),
after AS (  -- outcomes: the year from the day
    SELECT patient_id,
           bool_or(acute) AS acute_admission_12m
    FROM admission
    WHERE admitted >= CAST($reference AS DATE) AND admitted < CAST($reference AS DATE) + 365
    GROUP BY patient_id
)
SELECT p.patient_id,
       date_diff('year', p.birth, CAST($reference AS DATE))
         - CASE WHEN strftime(CAST($reference AS DATE), '%m-%d') < strftime(p.birth, '%m-%d') THEN 1 ELSE 0 END
         AS age,
       p.sex, p.municipality_code, p.gp_clinic_id, p.education,
       coalesce(h.acute_admissions_6m, 0) AS acute_admissions_6m,
       coalesce(h.acute_admissions_12m, 0) AS acute_admissions_12m,
       coalesce(h.bed_days_12m, 0) AS bed_days_12m,
       h.days_since_discharge,
       coalesce(c.ed_visits_12m, 0) AS ed_visits_12m,
       coalesce(c.gp_contacts_12m, 0) AS gp_contacts_12m,
       coalesce(c.acute_bed_stays_12m, 0) AS acute_bed_stays_12m,
       hc.patient_id IS NOT NULL AS home_care,
       coalesce(ch.charlson_index, 0) AS charlson_index,
       coalesce(ch.charlson_conditions, 0) AS charlson_conditions,
       coalesce(ch.conditions, []) AS conditions,
       al.lives_alone,
       coalesce(o.acute_admission_12m, false) AS acute_admission_12m
FROM person AS p
LEFT JOIN history AS h ON h.patient_id = p.patient_id
LEFT JOIN contacts AS c ON c.patient_id = p.patient_id
LEFT JOIN home_care AS hc ON hc.patient_id = p.patient_id
LEFT JOIN charlson AS ch ON ch.patient_id = p.patient_id
LEFT JOIN alone AS al ON al.patient_id = p.patient_id
LEFT JOIN after AS o ON o.patient_id = p.patient_id
ORDER BY p.patient_id
