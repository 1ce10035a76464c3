-- Admissions (acute only when $acute_only), counted on the day of admission ($value = 'count') or as bed
-- days on the day of discharge ($value = 'bed_days', as Statistics Denmark dates a stay by its end).
SELECT a.patient_id,
       CASE WHEN $value = 'bed_days' THEN a.discharged ELSE a.admitted END AS day,
       CASE WHEN $value = 'bed_days' THEN CAST(a.bed_days AS DOUBLE) ELSE 1.0 END AS value
FROM admission AS a
WHERE a.acute OR NOT $acute_only
