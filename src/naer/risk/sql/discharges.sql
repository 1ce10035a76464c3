-- The readmission indicator's index admissions (its events table, named by the events mark: discharged
-- alive, not for cancer, with 30 days of data after; outcome = an acute readmission within 30 days, not for
-- cancer, birth or injury) discharged on a day in [$from, $to), with what is known at the discharge.
-- The chronic_flags mark is replaced by one boolean column per chronic condition of chronic.yaml.
WITH idx AS (
    SELECT r.patient_id, r.s, r.e, r.acute, r.main_code, r.admitted, r.day AS discharged,
           r.outcome AS readmission_30d, r.day - r.admitted AS los_days,
           row_number() OVER (ORDER BY r.patient_id, r.s) AS admission_no
    FROM {events} AS r
    WHERE r.day >= CAST($from AS DATE) AND r.day < CAST($to AS DATE)
),
before AS (  -- admissions begun in the 365 days before the index admission
    SELECT i.admission_no, count(*) AS admissions_12m, count(*) FILTER (WHERE b.acute) AS acute_admissions_12m,
           CAST(sum(b.bed_days) AS INTEGER) AS bed_days_12m,
           i.admitted - max(b.discharged) AS days_since_discharge
    FROM idx AS i JOIN admission AS b
      ON b.patient_id = i.patient_id AND b.s < i.s AND b.admitted >= i.admitted - 365
    GROUP BY i.admission_no, i.admitted
),
contacts AS (  -- contacts begun before the admission: ED visits in 6 months (LACE), GP contacts in 12
    SELECT i.admission_no,
           count(*) FILTER (WHERE (c.class = 'EMER' OR c.contact_type = 'ed-visit') AND c.day >= i.admitted - 182)
               AS ed_visits_6m,
           count(*) FILTER (WHERE c.contact_type LIKE 'gp-%') AS gp_contacts_12m,
           bool_or(c.contact_type = 'home-care' AND (c.end_day IS NULL OR c.end_day >= i.admitted)) AS home_care
    FROM idx AS i JOIN risk_contact AS c
      ON c.patient_id = i.patient_id AND c.day < i.admitted AND c.day >= i.admitted - 365
    GROUP BY i.admission_no
),
known AS (  -- conditions known by the discharge (the stay's own diagnoses included)
    SELECT i.admission_no, f.scheme, f.condition, f.weight
    FROM idx AS i JOIN risk_dx AS f ON f.patient_id = i.patient_id AND f.day <= i.discharged
    WHERE NOT EXISTS (SELECT 1 FROM risk_dx AS g
                      WHERE g.patient_id = f.patient_id AND g.scheme = f.scheme AND g.replaces = f.condition
                        AND g.day <= i.discharged)
),
comorbidity AS (
    SELECT admission_no,
           CAST(coalesce(sum(weight) FILTER (WHERE scheme = 'charlson'), 0) AS INTEGER) AS charlson_index,
           count(*) FILTER (WHERE scheme = 'elixhauser') AS elixhauser_conditions,
           count(*) FILTER (WHERE scheme = 'chronic') AS chronic_conditions,
           list(condition ORDER BY condition) FILTER (WHERE scheme = 'chronic') AS chronic
    FROM known GROUP BY admission_no
),
oncology AS (  -- discharged from an oncology department (HOSPITAL's "O")
    SELECT DISTINCT i.admission_no
    FROM idx AS i
    JOIN attendance AS t ON t.patient_id = i.patient_id AND t.e = i.e
    JOIN encounter AS e ON e.id = t.id
    JOIN organization AS o ON o.id = e.service_provider_id
    WHERE o.kind = 'department-oncology'
),
social AS (  -- the latest fact by discharge; of two on one day, the later recorded (higher id)
    SELECT i.admission_no,
           arg_max(f.value_boolean, (f.effective, f.observation_id)) FILTER (WHERE f.fact = 'living-alone') AS lives_alone,
           arg_max(f.value_code, (f.effective, f.observation_id)) FILTER (WHERE f.fact = 'income-group') AS income,
           arg_max(f.value_code, (f.effective, f.observation_id)) FILTER (WHERE f.fact = '82589-3') AS education
    FROM idx AS i JOIN social_fact AS f
      ON f.patient_id = i.patient_id AND f.effective <= strftime(i.discharged, '%Y-%m-%d')
         AND f.fact IN ('living-alone', 'income-group', '82589-3')
    GROUP BY i.admission_no
)
SELECT i.patient_id, i.admitted, i.discharged,
       date_diff('year', CAST(p.birth_date AS DATE), i.discharged)
         - CASE WHEN strftime(i.discharged, '%m-%d') < strftime(CAST(p.birth_date AS DATE), '%m-%d') THEN 1 ELSE 0 END
         AS age,
       p.sex, p.municipality_code, p.gp_clinic_id, so.education, so.income,
       i.los_days, i.acute, left(i.main_code, 2) AS main_chapter,
       coalesce(b.admissions_12m, 0) AS admissions_12m,
       coalesce(b.acute_admissions_12m, 0) AS acute_admissions_12m,
       coalesce(b.bed_days_12m, 0) AS bed_days_12m,
       b.days_since_discharge,
       coalesce(c.ed_visits_6m, 0) AS ed_visits_6m,
       coalesce(c.gp_contacts_12m, 0) AS gp_contacts_12m,
       coalesce(c.home_care, false) AS home_care,
       coalesce(cm.charlson_index, 0) AS charlson_index,
       coalesce(cm.elixhauser_conditions, 0) AS elixhauser_conditions,
       coalesce(cm.chronic_conditions, 0) AS chronic_conditions,
       {chronic_flags},
       so.lives_alone,
       onc.admission_no IS NOT NULL AS oncology_discharge,
       i.readmission_30d
FROM idx AS i
JOIN patient AS p ON p.id = i.patient_id
LEFT JOIN before AS b ON b.admission_no = i.admission_no
LEFT JOIN contacts AS c ON c.admission_no = i.admission_no
LEFT JOIN comorbidity AS cm ON cm.admission_no = i.admission_no
LEFT JOIN oncology AS onc ON onc.admission_no = i.admission_no
LEFT JOIN social AS so ON so.admission_no = i.admission_no
ORDER BY i.patient_id, i.s
