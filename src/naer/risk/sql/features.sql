-- Features of every citizen living in the area on the reference day $reference, from data before that day
-- only (the test suite proves it: data after the day changes nothing), and the outcomes of the year from it.
-- Counts reach back up to five years: a citizen's lasting frailty shows in admissions and emergency visits
-- over years, a deterioration first in the last month's GP contacts.
-- Reads the indicators' shared tables (span, admission, codes of the preventable-admission groups in
-- preventable_codes) and risk_dx / risk_contact / risk_measurement (prepare.sql). The chronic_flags mark is replaced
-- by one boolean column per chronic condition of chronic.yaml.
WITH person AS (
    -- history_days: how many days of history the counts below can hold (the data's start, birth or moving in)
    SELECT s.patient_id, s.municipality_code, s.sex, s.gp_clinic_id, s.birth,
           CAST($reference AS DATE) - greatest(CAST($window_start AS DATE), s.birth,
                                               (SELECT min(t.s) FROM span AS t WHERE t.patient_id = s.patient_id))
               AS history_days
    FROM span AS s
    WHERE s.s <= CAST($reference AS DATE) AND CAST($reference AS DATE) < s.e
    QUALIFY row_number() OVER (PARTITION BY s.patient_id ORDER BY s.s DESC) = 1
),
history AS (  -- admissions begun before the day
    SELECT patient_id,
           count(*) FILTER (WHERE acute AND admitted >= CAST($reference AS DATE) - 182) AS acute_admissions_6m,
           count(*) FILTER (WHERE acute AND admitted >= CAST($reference AS DATE) - 365) AS acute_admissions_12m,
           count(*) FILTER (WHERE acute AND admitted >= CAST($reference AS DATE) - 1096) AS acute_admissions_36m,
           count(*) FILTER (WHERE acute AND admitted >= CAST($reference AS DATE) - 1826) AS acute_admissions_60m,
           count(*) FILTER (WHERE acute) AS acute_admissions_ever,
           count(*) FILTER (WHERE NOT acute AND admitted >= CAST($reference AS DATE) - 365) AS planned_admissions_12m,
           CAST(sum(bed_days) FILTER (WHERE discharged < CAST($reference AS DATE)
                                   AND discharged >= CAST($reference AS DATE) - 365) AS INTEGER) AS bed_days_12m,
           CAST($reference AS DATE) - max(discharged) FILTER (WHERE discharged < CAST($reference AS DATE))
               AS days_since_discharge
    FROM admission
    WHERE admitted < CAST($reference AS DATE)
    GROUP BY patient_id
),
contacts AS (  -- contacts before the day, in one pass: the last year's, and for the lasting signs of frailty
                -- the emergency visits of 3 and 5 years and of all the data (with history_days: a rate)
    SELECT patient_id,
           count(*) FILTER (WHERE (class = 'EMER' OR contact_type = 'ed-visit')
                              AND day >= CAST($reference AS DATE) - 365) AS ed_visits_12m,
           count(*) FILTER (WHERE (class = 'EMER' OR contact_type = 'ed-visit')
                              AND day >= CAST($reference AS DATE) - 1096) AS ed_visits_36m,
           count(*) FILTER (WHERE (class = 'EMER' OR contact_type = 'ed-visit')
                              AND day >= CAST($reference AS DATE) - 1826) AS ed_visits_60m,
           count(*) FILTER (WHERE class = 'EMER' OR contact_type = 'ed-visit') AS ed_visits_ever,
           count(*) FILTER (WHERE (class = 'EMER' OR contact_type = 'ed-visit')
                              AND day >= CAST($reference AS DATE) - 182) AS ed_visits_6m,
           count(*) FILTER (WHERE contact_type LIKE 'gp-%' AND day >= CAST($reference AS DATE) - 365)
               AS gp_contacts_12m,
           count(*) FILTER (WHERE contact_type LIKE 'gp-%' AND day >= CAST($reference AS DATE) - 91)
               AS gp_contacts_3m,
           count(*) FILTER (WHERE contact_type LIKE 'gp-%' AND day >= CAST($reference AS DATE) - 30)
               AS gp_contacts_1m,
           count(*) FILTER (WHERE contact_type = 'out-of-hours' AND day >= CAST($reference AS DATE) - 365)
               AS out_of_hours_12m,
           count(*) FILTER (WHERE contact_type = 'out-of-hours' AND day >= CAST($reference AS DATE) - 91)
               AS out_of_hours_3m,
           count(*) FILTER (WHERE contact_type = 'out-of-hours' AND day >= CAST($reference AS DATE) - 30)
               AS out_of_hours_1m,
           count(*) FILTER (WHERE contact_type = 'outpatient' AND day >= CAST($reference AS DATE) - 365)
               AS outpatient_visits_12m,
           count(*) FILTER (WHERE contact_type = 'acute-bed' AND day >= CAST($reference AS DATE) - 365)
               AS acute_bed_stays_12m
    FROM risk_contact
    WHERE day < CAST($reference AS DATE)
    GROUP BY patient_id
),
home_care AS (  -- home care begun before the day and not ended by it
    SELECT DISTINCT patient_id FROM risk_contact
    WHERE contact_type = 'home-care' AND day < CAST($reference AS DATE)
      AND (end_day IS NULL OR end_day >= CAST($reference AS DATE))
),
known AS (  -- conditions known before the day; a graver form known before it replaces the milder one
    SELECT f.patient_id, f.scheme, f.condition, f.weight
    FROM risk_dx AS f
    WHERE f.day < CAST($reference AS DATE)
      AND NOT EXISTS (SELECT 1 FROM risk_dx AS g
                      WHERE g.patient_id = f.patient_id AND g.scheme = f.scheme AND g.replaces = f.condition
                        AND g.day < CAST($reference AS DATE))
),
comorbidity AS (
    SELECT patient_id,
           CAST(coalesce(sum(weight) FILTER (WHERE scheme = 'charlson'), 0) AS INTEGER) AS charlson_index,
           count(*) FILTER (WHERE scheme = 'charlson') AS charlson_conditions,
           count(*) FILTER (WHERE scheme = 'elixhauser') AS elixhauser_conditions,
           count(*) FILTER (WHERE scheme = 'chronic') AS chronic_conditions,
           list(condition ORDER BY condition) FILTER (WHERE scheme = 'chronic') AS chronic,
           list(condition ORDER BY condition) FILTER (WHERE scheme = 'charlson') AS conditions
    FROM known
    GROUP BY patient_id
),
social AS (  -- the latest fact before the day; of two on one day, the later recorded (higher id)
    SELECT patient_id,
           arg_max(value_boolean, (effective, observation_id)) FILTER (WHERE fact = 'living-alone') AS lives_alone,
           arg_max(value_code, (effective, observation_id)) FILTER (WHERE fact = 'income-group') AS income,
           arg_max(value_code, (effective, observation_id)) FILTER (WHERE fact = '82589-3') AS education
    FROM social_fact
    WHERE fact IN ('living-alone', 'income-group', '82589-3')
      AND effective < strftime(CAST($reference AS DATE), '%Y-%m-%d')
    GROUP BY patient_id
),
measurement AS (  -- home measurements of the 60 days before: the last 14 days' mean against the 46 before
    SELECT patient_id,
           count(*) AS home_measurements_60d,
           avg(value) FILTER (WHERE code = '29463-7' AND day >= CAST($reference AS DATE) - 14)
             - avg(value) FILTER (WHERE code = '29463-7' AND day < CAST($reference AS DATE) - 14) AS weight_change_kg,
           avg(value) FILTER (WHERE code = '59408-5' AND day >= CAST($reference AS DATE) - 14)
             - avg(value) FILTER (WHERE code = '59408-5' AND day < CAST($reference AS DATE) - 14) AS spo2_change
    FROM risk_measurement
    WHERE day >= CAST($reference AS DATE) - 60 AND day < CAST($reference AS DATE)
    GROUP BY patient_id
),
after AS (  -- outcomes: the 365 days from the day
    SELECT a.patient_id,
           bool_or(a.acute) AS acute_admission_12m,
           bool_or(a.acute AND EXISTS (SELECT 1 FROM preventable_codes AS k WHERE starts_with(a.main_code, k.prefix)))
               AS preventable_admission_12m
    FROM admission AS a
    WHERE a.admitted >= CAST($reference AS DATE) AND a.admitted < CAST($reference AS DATE) + 365
    GROUP BY a.patient_id
)
SELECT p.patient_id,
       date_diff('year', p.birth, CAST($reference AS DATE))
         - CASE WHEN strftime(CAST($reference AS DATE), '%m-%d') < strftime(p.birth, '%m-%d') THEN 1 ELSE 0 END
         AS age,
       p.sex, p.municipality_code, p.gp_clinic_id, so.education, so.income,
       p.history_days,
       coalesce(h.acute_admissions_6m, 0) AS acute_admissions_6m,
       coalesce(h.acute_admissions_12m, 0) AS acute_admissions_12m,
       coalesce(h.acute_admissions_36m, 0) AS acute_admissions_36m,
       coalesce(h.acute_admissions_60m, 0) AS acute_admissions_60m,
       coalesce(h.acute_admissions_ever, 0) AS acute_admissions_ever,
       coalesce(h.planned_admissions_12m, 0) AS planned_admissions_12m,
       coalesce(h.bed_days_12m, 0) AS bed_days_12m,
       h.days_since_discharge,
       coalesce(c.ed_visits_6m, 0) AS ed_visits_6m,
       coalesce(c.ed_visits_12m, 0) AS ed_visits_12m,
       coalesce(c.ed_visits_36m, 0) AS ed_visits_36m,
       coalesce(c.ed_visits_60m, 0) AS ed_visits_60m,
       coalesce(c.ed_visits_ever, 0) AS ed_visits_ever,
       -- the same as yearly rates over the history the data holds: a lasting frailty's best estimate
       coalesce(h.acute_admissions_ever, 0) * 365.25
         / greatest(p.history_days, 30)
         AS acute_admission_rate,
       coalesce(c.ed_visits_ever, 0) * 365.25
         / greatest(p.history_days, 30)
         AS ed_visit_rate,
       coalesce(c.gp_contacts_1m, 0) AS gp_contacts_1m,
       coalesce(c.gp_contacts_3m, 0) AS gp_contacts_3m,
       coalesce(c.gp_contacts_12m, 0) AS gp_contacts_12m,
       coalesce(c.out_of_hours_1m, 0) AS out_of_hours_1m,
       coalesce(c.out_of_hours_3m, 0) AS out_of_hours_3m,
       coalesce(c.out_of_hours_12m, 0) AS out_of_hours_12m,
       coalesce(c.outpatient_visits_12m, 0) AS outpatient_visits_12m,
       coalesce(c.acute_bed_stays_12m, 0) AS acute_bed_stays_12m,
       hc.patient_id IS NOT NULL AS home_care,
       coalesce(cm.charlson_index, 0) AS charlson_index,
       coalesce(cm.charlson_conditions, 0) AS charlson_conditions,
       coalesce(cm.elixhauser_conditions, 0) AS elixhauser_conditions,
       coalesce(cm.chronic_conditions, 0) AS chronic_conditions,
       {chronic_flags},
       coalesce(cm.conditions, []) AS conditions,
       so.lives_alone,
       coalesce(m.home_measurements_60d, 0) AS home_measurements_60d,
       m.weight_change_kg,
       m.spo2_change,
       coalesce(o.acute_admission_12m, false) AS acute_admission_12m,
       CASE WHEN date_diff('year', p.birth, CAST($reference AS DATE)) >= 66
                 OR (date_diff('year', p.birth, CAST($reference AS DATE)) = 65
                     AND strftime(CAST($reference AS DATE), '%m-%d') >= strftime(p.birth, '%m-%d'))
            THEN coalesce(o.preventable_admission_12m, false) END AS preventable_admission_12m
FROM person AS p
LEFT JOIN history AS h ON h.patient_id = p.patient_id
LEFT JOIN contacts AS c ON c.patient_id = p.patient_id
LEFT JOIN home_care AS hc ON hc.patient_id = p.patient_id
LEFT JOIN comorbidity AS cm ON cm.patient_id = p.patient_id
LEFT JOIN social AS so ON so.patient_id = p.patient_id
LEFT JOIN measurement AS m ON m.patient_id = p.patient_id
LEFT JOIN after AS o ON o.patient_id = p.patient_id
ORDER BY p.patient_id
