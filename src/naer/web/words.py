"""The words of the sign-in, citizen and audit pages, Danish first with English beside (one table, so that
a translator reviews one file; the dashboard's own words move to message catalogues with the next issue)."""

from __future__ import annotations

from collections.abc import Callable

WORDS: dict[str, tuple[str, str]] = {
    "tagline": ("Det nære og sammenhængende sundhedsvæsen", "The near and coherent health system"),
    "login": ("Log ind", "Sign in"),
    "login_lead": (
        "Nær rummer borgeres helbredsoplysninger. Log ind med din egen bruger; al adgang bliver logget.",
        "Nær holds citizens' health records. Sign in as yourself; every access is logged.",
    ),
    "username": ("Brugernavn", "User name"),
    "password": ("Adgangskode", "Password"),
    "login_failed": ("Forkert brugernavn eller adgangskode.", "Wrong user name or password."),
    "form_expired": (
        "Formularen er udløbet eller kom ikke fra Nær. Prøv igen.",
        "The form expired or did not come from Nær. Try again.",
    ),
    "logout": ("Log ud", "Sign out"),
    "back": ("Tilbage til forsiden", "Back to the front page"),
    "forbidden": ("Ingen adgang", "Not allowed"),
    "not_found": ("Siden findes ikke", "No such page"),
    "not_found_lead": (
        "Der er ingen side på denne adresse. Vælg en side i menuen, eller gå til forsiden.",
        "There is no page at this address. Choose a page in the menu, or go to the front page.",
    ),
    "no_dashboard": (
        "Befolkningstallene er for planlæggere, administratorer og sundhedspersoner.",
        "The population figures are for planners, administrators and health professionals.",
    ),
    "no_worklist": (
        "Risikolisterne er for praktiserende læger og kommunens sygeplejersker (hver sin egen liste).",
        "The worklists are for GPs and the municipality's nurses (each their own list).",
    ),
    "my_log": ("Min log", "My log"),
    "my_log_lead": (
        "Her ser du, hvem der har set eller ændret dine helbredsoplysninger i Nær de seneste to år, "
        "og hvorfor.",
        "Who has seen or changed your health records in Nær in the last two years, and why.",
    ),
    "my_log_caption": (
        "Nyeste først. Værdispring (adgang uden en registreret behandlingsrelation) er markeret.",
        "Newest first. Break-the-glass (access without a recorded care relation) is marked.",
    ),
    "entries": ("{} opslag", "{} entries"),
    "when": ("Hvornår", "When"),
    "who": ("Hvem", "Who"),
    "role": ("Rolle", "Role"),
    "organisation": ("Organisation", "Organisation"),
    "what": ("Hvad", "What"),
    "why": ("Hvorfor", "Why"),
    "break_glass": ("Værdispring", "Break-the-glass"),
    "no_entries": ("Ingen har set dine oplysninger.", "No one has looked at your records."),
    "review": ("Gennemgang af værdispring", "Break-the-glass review"),
    "review_lead": (
        "Hver adgang ved værdispring venter på en administrators vurdering; afgørelsen logges.",
        "Every break-the-glass access waits for an administrator's review; the decision is logged.",
    ),
    "citizen": ("Borger", "Citizen"),
    "reason": ("Begrundelse", "Reason"),
    "decision": ("Afgørelse", "Decision"),
    "note": ("Bemærkning", "Note"),
    "accept": ("Godkend", "Accept"),
    "reject": ("Afvis", "Reject"),
    "accepted": ("godkendt", "accepted"),
    "rejected": ("afvist", "rejected"),
    "nothing_to_review": ("Intet venter på gennemgang.", "Nothing waits for review."),
    "cpr": ("CPR", "CPR"),
    "age": ("alder", "age"),
    "seen_by": ("adgang via", "access by"),
    "none": ("Ingen", "None"),
    "no_access": ("Ingen adgang til denne borger", "No access to this citizen"),
    "no_access_lead": (
        "Du har ingen behandlingsrelation til borgeren, eller borgeren har spærret for din adgang "
        "(eller borgeren findes ikke). Kun i en aktuel behandling må du se oplysningerne.",
        "You have no care relation with the citizen, or the citizen has blocked your access (or there is "
        "no such citizen). You may look only in current treatment.",
    ),
    "reason_label": (
        "Værdispring: skriv hvorfor du har brug for adgang nu (mindst 10 tegn). Adgangen varer 4 timer, "
        "logges, vises i borgerens log og gennemgås af en administrator.",
        "Break the glass: state why you need access now (10 characters at least). It lasts 4 hours, is "
        "logged, shown in the citizen's log and reviewed by an administrator.",
    ),
    "break_glass_button": ("Foretag værdispring", "Break the glass"),
    "encounters": ("Kontakter", "Encounters"),
    "conditions": ("Diagnoser", "Conditions"),
    "observations": ("Målinger", "Observations"),
    "period": ("Periode", "Period"),
    "kind": ("Type", "Kind"),
    "status": ("Status", "Status"),
    "place": ("Sted", "Place"),
    "code": ("Kode", "Code"),
    "value": ("Værdi", "Value"),
    "date": ("Dato", "Date"),
    "read": ("læste", "read"),
    "search": ("søgte i", "searched"),
    "role_gp": ("praktiserende læge", "general practitioner"),
    "role_home-care-nurse": ("sygeplejerske, hjemmeplejen", "home-care nurse"),
    "role_acute-bed-nurse": ("sygeplejerske, akutpladser", "acute-bed nurse"),
    "role_hospital-physician": ("læge, hospital", "hospital physician"),
    "role_planner": ("planlægger", "planner"),
    "role_citizen": ("borger", "citizen"),
    "role_admin": ("administrator", "administrator"),
    "role_system": ("system", "system"),
    "role_anonymous": ("ukendt", "unknown"),
    "relation_general-practitioner": ("borgerens egen læge", "the citizen's GP"),
    "relation_care-team": ("borgerens behandlerteam", "the citizen's care team"),
    "relation_home-care": ("hjemmepleje", "home care"),
    "relation_acute-bed": ("akutplads", "acute bed"),
    "relation_open-encounter": ("igangværende kontakt", "an open encounter"),
    "relation_discharge-72-hours": ("72-timers udvidet behandlingsansvar", "72-hour responsibility"),
    "relation_episode-of-care": ("igangværende forløb", "an open episode of care"),
    "relation_task": ("opgave om borgeren", "a task about the citizen"),
    "relation_service-request": ("henvisning", "a referral"),
    "relation_advice-request": ("rådgivning", "an advice request"),
    "relation_break-the-glass": ("værdispring", "break-the-glass"),
    "relation_own": ("borgeren selv", "the citizen"),
    "relation_all": ("systemadgang", "system access"),
    "relation_none": ("-", "-"),
    "action_read": ("læste", "read"),
    "action_vread": ("læste en tidligere version af", "read an earlier version of"),
    "action_search": ("søgte og så", "searched and saw"),
    "action_history": ("så historikken for", "saw the history of"),
    "action_export": ("eksporterede", "exported"),
    "action_create": ("oprettede", "created"),
    "action_update": ("ændrede", "changed"),
    "action_delete": ("slettede", "deleted"),
    "action_break-glass": ("foretog værdispring", "broke the glass"),
    "action_review": ("gennemgik et værdispring", "reviewed a break-the-glass"),
    "action_import": ("indlæste", "imported"),
}


def translator(lang: str) -> Callable[..., str]:
    index = 1 if lang == "en" else 0

    def t(key: str, *values: object) -> str:
        pair = WORDS.get(key)
        text = pair[index] if pair else key
        return text.format(*values) if values else text

    return t
