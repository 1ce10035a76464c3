"""The names of Nær's own codes that the access pages show: roles, care relations, audit actions and
review decisions, each marked for the message catalogue (``locale/*/LC_MESSAGES/messages.po``, where the
Danish is) and looked up by code, so that a code the data hold but this table lacks shows as itself."""

from __future__ import annotations

from naer.web.i18n import mark as _

# The policy's roles (policy.yaml), as a person's title.
ROLES = {
    "gp": _("general practitioner"),
    "home-care-nurse": _("home-care nurse"),
    "acute-bed-nurse": _("acute-bed nurse"),
    "hospital-physician": _("hospital physician"),
    "planner": _("planner"),
    "citizen": _("citizen"),
    "admin": _("administrator"),
    "system": _("system"),
    "anonymous": _("unknown"),
}
# Care relations (policy.yaml) as the citizen's log names them.
RELATIONS = {
    "general-practitioner": _("the citizen's GP"),
    "care-team": _("the citizen's care team"),
    "home-care": _("home care"),
    "acute-bed": _("acute bed"),
    "open-encounter": _("an open encounter"),
    "discharge-72-hours": _("72-hour responsibility"),
    "episode-of-care": _("an open episode of care"),
    "task": _("a task about the citizen"),
    "service-request": _("a referral"),
    "advice-request": _("an advice request"),
    "break-the-glass": _("break-the-glass"),
    "own": _("the citizen"),
    "all": _("system access"),
    "none": "–",  # (no relation: nothing to translate)
}
# Audit actions as the citizen's log tells them ("... read Patient").
ACTIONS = {
    "read": _("read"),
    "vread": _("read an earlier version of"),
    "search": _("searched and saw"),
    "history": _("saw the history of"),
    "export": _("exported"),
    "create": _("created"),
    "update": _("changed"),
    "delete": _("deleted"),
    "break-glass": _("broke the glass"),
    "review": _("reviewed a break-the-glass"),
    "import": _("imported"),
}
# Decisions of the break-the-glass review.
REVIEWS = {"accepted": _("accepted"), "rejected": _("rejected")}
# Kinds of record as the citizen's log names them ("... read your care plan"); a kind not here shows as
# its FHIR type.
RECORDS = {
    "Patient": _("your details"),
    "Encounter": _("your contacts"),
    "Condition": _("your diagnoses"),
    "Observation": _("your measurements and observations"),
    "Task": _("a task about you"),
    "CommunicationRequest": _("an advice request about you"),
    "Communication": _("a message about you"),
    "ServiceRequest": _("a referral or delegation about you"),
    "CarePlan": _("your care plan"),
    "CareTeam": _("your care team"),
    "Goal": _("a goal in your plan"),
    "DocumentReference": _("a document about you"),
    "Consent": _("your consent and blocks"),
    "EpisodeOfCare": _("your course of care"),
    "Group": _("a group you are in"),
}
