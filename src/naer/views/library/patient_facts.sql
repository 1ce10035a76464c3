-- Citizens with the facts analyses ask for most: age, the latest highest education, living alone and income
-- group. Age is counted to the citizen's death or to the end of the data (the last contact start in the
-- encounter table), so the same data gives the same ages whenever it is run. Indicators and risk features
-- count age at their own dates from birth_date.
WITH as_of AS (
    SELECT coalesce(max(TRY_CAST("start" AS TIMESTAMPTZ))::DATE, current_date) AS day FROM encounter
),
latest AS (
    SELECT patient_id, fact, value_code, value_boolean,
           row_number() OVER (PARTITION BY patient_id, fact ORDER BY effective DESC, observation_id DESC) AS nr
    FROM social_fact
)
SELECT
    p.*,
    date_diff('year', TRY_CAST(p.birth_date AS DATE),
              coalesce(TRY_CAST(p.death_date AS TIMESTAMPTZ)::DATE, as_of.day))
      - CASE WHEN strftime(coalesce(TRY_CAST(p.death_date AS TIMESTAMPTZ)::DATE, as_of.day), '%m-%d')
                  < strftime(TRY_CAST(p.birth_date AS DATE), '%m-%d') THEN 1 ELSE 0 END AS age,
    edu.value_code AS education,
    alone.value_boolean AS lives_alone,
    income.value_code AS income_group
FROM patient AS p
CROSS JOIN as_of
LEFT JOIN latest AS edu ON edu.patient_id = p.id AND edu.fact = '82589-3' AND edu.nr = 1
LEFT JOIN latest AS alone ON alone.patient_id = p.id AND alone.fact = 'living-alone' AND alone.nr = 1
LEFT JOIN latest AS income ON income.patient_id = p.id AND income.fact = 'income-group' AND income.nr = 1
