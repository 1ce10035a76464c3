-- Index admissions (discharged alive, with $days days of data after the discharge, main diagnosis not in
-- code group index_excluded) and whether an acute admission whose main diagnosis is not in
-- readmission_excluded starts within $days days of the discharge. Counted on the day of discharge. The
-- admission's own columns (s, e, admitted, acute, main_code) come along for the readmission model at discharge.
WITH idx AS (
    SELECT a.patient_id, a.s, a.e, a.admitted, a.discharged, a.acute, a.main_code
    FROM admission AS a
    WHERE NOT a.died
      AND a.discharged + $days < CAST($window_end AS DATE)
      AND NOT EXISTS (SELECT 1 FROM codes AS c
                      WHERE c.grp = 'index_excluded' AND starts_with(a.main_code, c.prefix))
),
readmission AS (
    SELECT a.patient_id, a.s, a.admitted
    FROM admission AS a
    WHERE a.acute
      AND NOT EXISTS (SELECT 1 FROM codes AS c
                      WHERE c.grp = 'readmission_excluded' AND starts_with(a.main_code, c.prefix))
)
SELECT i.patient_id, i.discharged AS day, i.s, i.e, i.admitted, i.acute, i.main_code,
       EXISTS (SELECT 1 FROM readmission AS r
               WHERE r.patient_id = i.patient_id AND r.s > i.e
                 AND r.admitted <= i.discharged + $days) AS outcome
FROM idx AS i
