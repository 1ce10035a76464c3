-- Acute admissions (or all, when $acute_only is false) whose main diagnosis falls in the indicator's code
-- groups (table codes: grp, prefix). Counted on the day of admission.
SELECT a.patient_id, a.admitted AS day, 1.0 AS value
FROM admission AS a
WHERE (a.acute OR NOT $acute_only)
  AND EXISTS (SELECT 1 FROM codes AS c WHERE starts_with(a.main_code, c.prefix))
