-- The tables every indicator reads, made once from the views' tables. Parameters: $window_start and
-- $window_end (the days counted, end exclusive), $link_hours (attendances this close are one stay),
-- $min_stay_hours (a stay this long is an admission). Statements are separated by a line holding ";".

-- Physical attendances at somatic hospitals: inpatient stays and emergency visits at a hospital or one of its
-- departments (outpatient visits are left out: see docs/indicators.md). Data from other generators, whose
-- organisations carry no kind, count their inpatient and emergency encounters. Psychiatric hospitals are
-- left out (the indicators are somatic).
CREATE TEMP TABLE attendance AS
WITH hospital AS (  -- organisations whose encounters are hospital attendances; NULL kind: other data
    SELECT id, kind FROM organization
)
SELECT
    e.id,
    e.patient_id,
    e."start" AS start_text,
    coalesce(e."end", e."start") AS end_text,
    -- instants as seconds since 1970 (integer arithmetic; timestamp-with-zone arithmetic is slow)
    epoch(TRY_CAST(e."start" AS TIMESTAMPTZ)) AS s,
    coalesce(epoch(TRY_CAST(e."end" AS TIMESTAMPTZ)), epoch(TRY_CAST(e."start" AS TIMESTAMPTZ))) AS e,
    e.class = 'IMP' AS inpatient,
    (e.priority = 'EM' OR e.class = 'EMER' OR e.contact_type IN ('acute-admission', 'ed-visit')
        OR e.admit_source = 'emd') AS acute,
    e.discharge_disposition AS disposition
FROM encounter AS e
LEFT JOIN hospital AS h ON h.id = e.service_provider_id
WHERE e.patient_id IS NOT NULL
  AND e.class IN ('IMP', 'EMER', 'ACUTE', 'NONAC', 'OBSENC')
  AND (h.kind = 'hospital' OR h.kind LIKE 'department-%' OR h.kind IS NULL)
  AND TRY_CAST(e."start" AS TIMESTAMPTZ) IS NOT NULL
;
-- Main diagnosis (rank 1, or the first listed where there is no rank) of each attendance, as an SKS code:
-- SKS as it is; ICD-10 / ICD-10-CM from other data as D + the code without its dot; other systems none.
CREATE TEMP TABLE main_diagnosis AS
SELECT encounter_id, arg_min(code, coalesce(rank, 1000000 + position)) AS code
FROM (
    SELECT d.encounter_id, d.rank, d.position,
           coalesce(d.sks_code,
                    CASE WHEN d.code_system ILIKE '%icd-10%' THEN 'D' || upper(replace(d.code, '.', '')) END) AS code
    FROM encounter_diagnosis_code AS d
    WHERE coalesce(d.rank, 1) = 1
)
GROUP BY encounter_id
;
-- Stays: attendances of one citizen that overlap or follow each other within $link_hours are one stay
-- (so a transfer between departments or hospitals is one admission). The stay is acute when its first
-- attendance is; its main diagnosis is that of its first inpatient attendance (else its first).
CREATE TEMP TABLE stay AS
WITH ordered AS (
    -- partitions by a 64-bit hash of the citizen (integers sort and group faster than text); ordering by the
    -- citizen inside them keeps two citizens apart even if their hashes were ever to collide
    SELECT a.*, hash(a.patient_id) AS pk, md.code AS main_code
    FROM attendance AS a LEFT JOIN main_diagnosis AS md ON md.encounter_id = a.id
),
flagged AS (
    SELECT *,
           max(e) OVER (PARTITION BY pk ORDER BY patient_id, s, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach,
           lag(patient_id) OVER (PARTITION BY pk ORDER BY patient_id, s, id) AS previous_patient
    FROM ordered
),
numbered AS (
    SELECT *, sum(CASE WHEN reach IS NULL OR previous_patient <> patient_id OR s > reach + $link_hours * 3600
                       THEN 1 ELSE 0 END)
                  OVER (PARTITION BY pk ORDER BY patient_id, s, id ROWS UNBOUNDED PRECEDING) AS stay_no
    FROM flagged
)
SELECT any_value(patient_id) AS patient_id, stay_no,
       min(s) AS s, max(e) AS e,
       arg_min({'start_text': start_text, 'acute': acute}, s) AS first,
       arg_max({'end_text': end_text, 'disposition': disposition}, e) AS last,
       -- inpatient attendances first: their instants are shifted back by 10^12 s (30,000 years)
       arg_min(main_code, s - CASE WHEN inpatient THEN 1000000000000 ELSE 0 END) AS main_code
FROM numbered
GROUP BY pk, stay_no
;
-- Admissions: stays of $min_stay_hours or more, with whether the citizen died during it (discharged
-- dead, or a death date within the stay), and the day counts Statistics Denmark uses for bed days. Days are
-- the local dates as the data writes them (the first ten characters of a dateTime).
CREATE TEMP TABLE admission AS
SELECT st.patient_id, st.s, st.e, st.first.acute AS acute, st.main_code, st.last.disposition AS disposition,
       CAST(left(st.first.start_text, 10) AS DATE) AS admitted,
       CAST(left(st.last.end_text, 10) AS DATE) AS discharged,
       left(st.last.end_text, 10) AS discharged_text,
       TRY_CAST(left(st.last.end_text, 19) AS TIMESTAMP) AS discharged_local,
       greatest(date_diff('day', CAST(left(st.first.start_text, 10) AS DATE),
                          CAST(left(st.last.end_text, 10) AS DATE)), 1) AS bed_days,
       (coalesce(st.last.disposition = 'exp', false)
        OR coalesce(TRY_CAST(left(p.death_date, 10) AS DATE) <= CAST(left(st.last.end_text, 10) AS DATE), false))
           AS died,
       TRY_CAST(left(p.death_date, 10) AS DATE) AS death_day
FROM stay AS st
LEFT JOIN patient AS p ON p.id = st.patient_id
WHERE st.e - st.s >= $min_stay_hours * 3600
;
-- Municipalities of the area: those the data holds a municipality organisation for. Empty for data
-- without Danish municipality codes, in which case every citizen counts.
CREATE TEMP TABLE area AS
SELECT DISTINCT municipality_code FROM organization
WHERE municipality_code IS NOT NULL AND (kind = 'municipality' OR sector = 'municipality')
;
-- Residence spans: the days [s, e) a citizen lived at a home address in the area, within the window,
-- from birth (or moving in) to moving out or the day after death. Of several home addresses without a
-- period, only the first counts; a citizen without a home address counts with no municipality.
CREATE TEMP TABLE span AS
WITH home AS (
    SELECT r.patient_id, r.position, r.municipality_code,
           TRY_CAST(r."start" AS DATE) AS moved_in, TRY_CAST(r."end" AS DATE) AS moved_out
    FROM residence AS r
    QUALIFY NOT (moved_in IS NULL AND moved_out IS NULL
                 AND position > min(position) OVER (PARTITION BY r.patient_id))
    UNION ALL
    SELECT p.id, 1, NULL, NULL, NULL FROM patient AS p
    WHERE NOT EXISTS (SELECT 1 FROM residence AS r WHERE r.patient_id = p.id)
),
education AS (  -- the latest; of two on one day, the later recorded (higher id)
    SELECT patient_id, arg_max(value_code, (effective, observation_id)) AS education
    FROM social_fact WHERE fact = '82589-3' AND effective IS NOT NULL GROUP BY patient_id
),
person AS (
    SELECT f.id, f.sex, f.gp_clinic_id, ed.education, TRY_CAST(f.birth_date AS DATE) AS birth,
           TRY_CAST(left(f.death_date, 10) AS DATE) AS death
    FROM patient AS f LEFT JOIN education AS ed ON ed.patient_id = f.id
)
SELECT h.patient_id, h.municipality_code, p.sex, p.gp_clinic_id, p.education, p.birth,
       greatest(coalesce(h.moved_in, p.birth), p.birth, CAST($window_start AS DATE)) AS s,
       least(coalesce(h.moved_out, CAST($window_end AS DATE)),
             coalesce(p.death + 1, CAST($window_end AS DATE)),
             CAST($window_end AS DATE)) AS e
FROM home AS h
JOIN person AS p ON p.id = h.patient_id
WHERE p.birth IS NOT NULL
  AND ((SELECT count(*) FROM area) = 0 OR h.municipality_code IN (SELECT municipality_code FROM area))
  AND greatest(coalesce(h.moved_in, p.birth), p.birth, CAST($window_start AS DATE))
      < least(coalesce(h.moved_out, CAST($window_end AS DATE)),
              coalesce(p.death + 1, CAST($window_end AS DATE)), CAST($window_end AS DATE))
