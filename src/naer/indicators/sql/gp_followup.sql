-- Discharges alive from an admission, with $days days of data after them and no death within them, and
-- whether general practice had a contact with the citizen after the discharge and within $days days
-- (by local date, compared as ISO text, which sorts as dates do; on the day of discharge only after the
-- discharge time). Counted on the day of discharge.
WITH discharge AS (
    SELECT a.patient_id, a.discharged, a.discharged_text, a.discharged_local,
           strftime(a.discharged + $days + 1, '%Y-%m-%d') AS until_text
    FROM admission AS a
    WHERE NOT a.died
      AND a.discharged + $days < CAST($window_end AS DATE)
      AND NOT coalesce(a.death_day <= a.discharged + $days, false)
)
SELECT d.patient_id, d.discharged AS day,
       EXISTS (SELECT 1 FROM encounter_detail AS g
               WHERE g.patient_id = d.patient_id
                 AND (g.contact_type LIKE 'gp-%' OR g.sector = 'general-practice' OR g.provider_kind = 'gp-clinic')
                 AND g."start" >= d.discharged_text AND g."start" < d.until_text
                 AND TRY_CAST(left(g."start", 19) AS TIMESTAMP) > d.discharged_local) AS outcome
FROM discharge AS d
