-- Stays at a municipality's acute beds (contact type acute-bed, or an encounter at an organisation of kind
-- municipal-acutebeds), counted on the day they begin. Two branches rather than one OR, so that each is a
-- cheap filter or a join against a handful of organisations.
SELECT patient_id, TRY_CAST(left("start", 10) AS DATE) AS day, 1.0 AS value
FROM encounter
WHERE contact_type = 'acute-bed' AND patient_id IS NOT NULL AND TRY_CAST(left("start", 10) AS DATE) IS NOT NULL
UNION ALL
SELECT e.patient_id, TRY_CAST(left(e."start", 10) AS DATE), 1.0
FROM encounter AS e
JOIN organization AS o ON o.id = e.service_provider_id AND o.kind = 'municipal-acutebeds'
WHERE e.contact_type IS DISTINCT FROM 'acute-bed' AND e.patient_id IS NOT NULL
  AND TRY_CAST(left(e."start", 10) AS DATE) IS NOT NULL
