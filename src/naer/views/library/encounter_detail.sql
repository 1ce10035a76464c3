-- Contacts with the sector and kind of the organisation that provided them (general practice, municipality,
-- hospital, region), its parent (the hospital of a department, the municipality of a home-care unit) and the
-- municipality code found on the provider or its parent.
SELECT
    e.*,
    coalesce(o.sector, parent.sector) AS sector,
    o.kind AS provider_kind,
    o.name AS provider_name,
    o.part_of_id AS provider_parent_id,
    coalesce(o.municipality_code, parent.municipality_code) AS provider_municipality_code
FROM encounter AS e
LEFT JOIN organization AS o ON o.id = e.service_provider_id
LEFT JOIN organization AS parent ON parent.id = o.part_of_id
