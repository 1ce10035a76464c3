-- Discharges alive from an admission of citizens aged $min_age or more on the day, with $days days of data
-- after them and no death within them, and whether general practice had a contact with the citizen after
-- the discharge and within $days days (by local date, compared as ISO text, which sorts as dates do; on the
-- day of discharge only after the discharge time). Counted on the day of discharge.
WITH typed AS (SELECT count(*) > 0 AS yes FROM (SELECT 1 FROM encounter WHERE contact_type LIKE 'gp-%' LIMIT 1)),
gp AS (
    -- contacts with general practice by Nær's contact types; in data without them, the encounters at a
    -- general-practice organisation (the join then has organisations to match; else none and costs nothing)
    SELECT patient_id, "start" FROM encounter WHERE contact_type LIKE 'gp-%'
    UNION ALL
    SELECT e.patient_id, e."start"
    FROM encounter AS e
    JOIN (SELECT id FROM organization
          WHERE (kind = 'gp-clinic' OR sector = 'general-practice') AND NOT (SELECT yes FROM typed)) AS o
      ON o.id = e.service_provider_id
),
discharge AS (
    SELECT a.patient_id, a.discharged, a.discharged_text, a.discharged_local,
           strftime(a.discharged + $days + 1, '%Y-%m-%d') AS until_text
    FROM admission AS a
    JOIN patient AS p ON p.id = a.patient_id
    WHERE NOT a.died
      AND a.discharged + $days < CAST($window_end AS DATE)
      AND NOT coalesce(a.death_day <= a.discharged + $days, false)
      AND a.discharged >= CAST(TRY_CAST(p.birth_date AS DATE) + to_years($min_age) AS DATE)
)
SELECT d.patient_id, d.discharged AS day,
       EXISTS (SELECT 1 FROM gp AS g
               WHERE g.patient_id = d.patient_id
                 AND g."start" >= d.discharged_text AND g."start" < d.until_text
                 AND TRY_CAST(left(g."start", 19) AS TIMESTAMP) > d.discharged_local) AS outcome
FROM discharge AS d
