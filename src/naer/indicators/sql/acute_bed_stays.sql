-- Stays at a municipality's acute beds, counted on the day they begin.
SELECT patient_id, TRY_CAST(left("start", 10) AS DATE) AS day, 1.0 AS value
FROM encounter_detail
WHERE patient_id IS NOT NULL AND TRY_CAST(left("start", 10) AS DATE) IS NOT NULL
  AND (contact_type = 'acute-bed' OR provider_kind = 'municipal-acutebeds')
