"""Live workflows for the demo: on the demo's "today" (the last day of the synthetic data), the demo's
people on Samsø do what their days hold, through the workflows themselves — so every example obeys the
same rules, access policy and audit as anything a user does, and the inboxes, the course page and the
citizen's plan are not empty when `make demo` starts.

Around the demo citizen (in home care and admitted at the demo physician's department): the GP holds the
medical responsibility at home, writes the shared care plan (goals across life areas, activities of three
sectors, a palliative section, thresholds for home measurements) and delegates IV antibiotics, which the
home-care nurse assigns to herself (her competence registered by the administrator); the nurse asks the
department for advice three times (one answered, one waiting, one acute and overdue, escalated to the
on-call physician); the physician hands over the follow-up needs of the admission to the GP, home care,
rehabilitation and social services. Beside that: the GP refers another citizen on the fast track, and two
citizens in home care are admitted to Samsø Sundheds- og Akuthus' acute beds. Only `naer coordination
demo` (`make demo`) calls this, once per loaded store.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from naer import clock
from naer.access import accounts
from naer.access.context import AccessContext
from naer.coordination import advice, beds, careplan, competence, delegation, followup, measurements, referral
from naer.coordination import values as v
from naer.coordination.calendar import DANISH_TIME
from naer.errors import UserError
from naer.fhir.systems import ACT_CODE
from naer.store import resources as store
from naer.store.context import SYSTEM
from naer.store.errors import NotFound
from naer.store.search.query import search

ACUTE_UNIT = "muni-0741-acutebeds"
PEOPLE = ("laege", "hjemmesygeplejerske", "akutsygeplejerske", "overlaege", "vagtlaege", "admin", "borger")
INSTRUCTION = """Instruks: intravenøs antibiotika i eget hjem (rammedelegation)

1. Kontrollér borgerens identitet og ordinationen (præparat, dosis, tidspunkt).
2. Vurdér borgeren (TOKS) før hver indgift; ved TOKS >= 3 kontaktes den behandlingsansvarlige læge.
3. Anlæg eller kontrollér PVK; giv antibiotika over 30 minutter.
4. Observér for allergisk reaktion i 15 minutter efter første dosis.
5. Dokumentér indgift og observationer; ved tvivl kontaktes lægen."""


def _context(db: Engine, name: str) -> AccessContext:
    account = accounts.get(db, name)
    if account is None:
        raise UserError(f"the demo user {name!r} is missing: run `naer users demo` first")
    return AccessContext(accounts.principal(db, account, None, "demo"), db, None)


def _encounters(db: Engine, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    found = search(db, SYSTEM, "Encounter", [*pairs, ("_sort", "_id"), ("_count", "200")])
    return [v.load(m) for m in found.matches]


def make_demo(db: Engine) -> dict[str, int]:
    """Write the demo's live workflows; how many of each."""
    people = {name: _context(db, name) for name in PEOPLE}
    citizen = people["borger"].principal.patient
    department = people["overlaege"].principal.organization
    gp_clinic = people["laege"].principal.organization
    if not citizen or not department or not gp_clinic:
        raise UserError(
            "the demo users lack their citizen, department or clinic: run `naer users demo` again"
        )
    now = clock.now()
    today = now.astimezone(DANISH_TIME).date()
    made: dict[str, int] = {}

    def count(what: str, n: int = 1) -> None:
        made[what] = made.get(what, 0) + n

    # The competence register: the two demo nurses' IV therapy; one point-of-care course about to expire.
    nurses = {"hjemmesygeplejerske": "demo-nurse-home", "akutsygeplejerske": "demo-nurse-acute"}
    for practitioner in nurses.values():
        competence.register(db, people["admin"], practitioner, "iv-therapy", today - timedelta(days=300))
        count("competences")
    competence.register(
        db,
        people["admin"],
        "demo-nurse-home",
        "point-of-care-testing",
        today - timedelta(days=700),
        today + timedelta(days=20),
    )
    count("competences")

    # Medical responsibility at home, the shared care plan and a framework delegation.
    gp = people["laege"]
    delegation.take_responsibility(db, gp, citizen, "home", today)
    count("responsibilities")
    plan: list[tuple[careplan.Change, dict[str, Any]]] = [
        ("goal", {"description": "Kan klare trapperne og gå til købmanden selv", "area": "function"}),
        ("goal", {"description": "Færre akutte indlæggelser: kender sine advarselstegn", "area": "health"}),
        (
            "activity",
            {
                "description": "Genoptræning to gange ugentligt",
                "organization": "muni-0741-rehab",
                "area": "function",
            },
        ),
        (
            "activity",
            {"description": "Daglig vægt og tilsyn med ødemer", "organization": "muni-0741-homecare"},
        ),
        ("activity", {"description": "Medicingennemgang", "organization": gp_clinic}),
        (
            "activity",
            {
                "description": "Samtale om boligindretning og hjælpemidler",
                "organization": "muni-0741",
                "area": "housing",
            },
        ),
        (
            "palliative",
            {
                "place_of_care": "Hjemme",
                "place_of_death": "Hjemme, hvis det er muligt",
                "contact": "Akutteamet døgnet rundt",
                "contact_organization": "muni-0741-acuteteam",
            },
        ),
        (
            "thresholds",
            {
                "thresholds": [
                    {"measure": "spo2", "low": 90},
                    {"measure": "systolic", "high": 180},
                    {"measure": "weight", "rise": 2, "days": 3},
                ]
            },
        ),
    ]
    for section, values in plan:
        careplan.change(db, gp, citizen, section, values, None)
        count("care plan changes")
    order = delegation.delegate(
        db,
        gp,
        "iv-antibiotics",
        today,
        today + timedelta(days=14),
        "Ved feber over 38,5 og CRP over 100 efter telefonisk konference med lægen",
        "Instruks: IV antibiotika",
        INSTRUCTION,
        "1",
        patient_id=citizen,
    )
    delegation.assign(
        db,
        gp,
        order["id"],
        citizen,
        "role-demo-nurse-home",
        today + timedelta(days=1),
    )
    count("delegations")

    # Advice: answered this morning, waiting, and an acute one sent three hours ago that nobody answered;
    # asked by the home-care nurse (or the GP, where the citizen has no home care in a smaller data set).
    nurse = people["hjemmesygeplejerske"] if _sees(db, people["hjemmesygeplejerske"], citizen) else gp
    with clock.frozen_at(now - timedelta(hours=5)):
        answered = advice.ask(
            db,
            nurse,
            advice.Question(
                citizen,
                "same-day",
                "Borgeren har tiltagende ødemer og har taget 2 kg på. Skal vi øge diuretika?",
                department,
            ),
        )
    with clock.frozen_at(now - timedelta(hours=4)):
        advice.move(db, people["overlaege"], answered.task["id"], "receive")
        advice.move(
            db,
            people["overlaege"],
            answered.task["id"],
            "answer",
            "Øg furosemid til 40 mg x 2 i tre dage; ny vægt og væsketal fredag. Ring ved åndenød.",
        )
    advice.ask(
        db,
        nurse,
        advice.Question(
            citizen, "three-working-days", "Ønsker vurdering af smertebehandlingen før weekenden.", department
        ),
    )
    with clock.frozen_at(now - timedelta(hours=3)):
        advice.ask(
            db,
            nurse,
            advice.Question(
                citizen, "acute", "Akut: SAT 88 % og ny forvirring. Skal borgeren indlægges?", department
            ),
        )
    count("advice requests", 3)
    count("escalated", len(advice.escalate_overdue(db)))

    # The follow-up of the citizen's admission, handed over by the department.
    stays = _encounters(
        db,
        [
            ("patient", f"Patient/{citizen}"),
            ("status", "in-progress"),
            ("class", f"{ACT_CODE}|IMP"),
            ("service-provider", f"Organization/{department}"),
        ],
    )
    if stays:
        needs = [
            followup.Need("gp", "Kontrol af væsketal og vægt; justér diuretika", today + timedelta(days=7)),
            followup.Need("home-care", "Daglig vægt og tilsyn med ødemer", today + timedelta(days=1)),
            followup.Need("rehabilitation", "Genoptræning efter indlæggelsen", today + timedelta(days=14)),
            followup.Need(
                "social", "Hjælp til boligsituationen (trapper)", today + timedelta(days=21), False
            ),
        ]
        handed = followup.hand_over(db, people["overlaege"], stays[0]["id"], needs)
        count("follow-up tasks", len(handed))
        home = next(t for t in handed if "muni-0741-homecare" in t["owner"]["reference"])
        followup.move(db, people["hjemmesygeplejerske"], home["id"], "accept")

    # A fast-track referral of another of the GP's citizens, and two citizens in the acute beds.
    others = [p for p in _listed(db, gp_clinic) if p != citizen]
    if others:
        referral.refer(
            db,
            gp,
            others[0],
            department,
            "fast-track",
            "Vægttab 8 kg på tre måneder, træthed og anæmi: mistanke om alvorlig sygdom",
        )
        count("referrals")
    at_home = [
        v.ref_id(e.get("subject"), "Patient")
        for e in _encounters(
            db,
            [
                ("status", "in-progress"),
                ("class", f"{ACT_CODE}|HH"),
                ("service-provider", "Organization/muni-0741-homecare"),
            ],
        )
    ]
    gp_role = people["laege"].principal.practitioner_role or ""
    for patient in [p for p in at_home if p and p != citizen][:2]:
        beds.admit(db, gp, patient, ACUTE_UNIT, gp_role, "Akut forværring; behandling i akutplads")
        count("acute-bed stays")
    count("measurement alerts", len(measurements.check_all(db)))
    return made


def _sees(db: Engine, context: AccessContext, patient: str) -> bool:
    """Whether the person has a care relation with the citizen (reads the Patient: audited)."""
    try:
        store.read(db, context, "Patient", patient)
    except NotFound:
        return False
    return True


def _listed(db: Engine, clinic: str) -> list[str]:
    found = search(
        db,
        SYSTEM,
        "Patient",
        [
            ("general-practitioner", f"Organization/{clinic}"),
            ("deceased", "false"),
            ("_sort", "_id"),
            ("_count", "5"),
        ],
    )
    return [m.id for m in found.matches]
