"""The standard replies of the support process, shipped as editable examples.

Installed once per database (by ``key``) the first time the reply service is used;
staff may edit or delete them afterwards and a restart does not undo that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ShippedReply:
    key: str
    title: str
    body: str
    language: str
    visibility: str = "public"


SHIPPED: Final[tuple[ShippedReply, ...]] = (
    ShippedReply(
        key="contract_blocked.en",
        language="en",
        title="Contract blocked",
        body=(
            "Dear ${customer_name},\n\n"
            "we cannot work on case ${ref} (${summary}): your contract does not cover "
            "support at the moment. Please contact your account manager; we will resume "
            "as soon as the contract is active again."
        ),
    ),
    ShippedReply(
        key="contract_blocked.it",
        language="it",
        title="Contratto bloccato",
        body=(
            "Gentile ${customer_name},\n\n"
            "non possiamo lavorare sul caso ${ref} (${summary}): il vostro contratto al "
            "momento non copre l'assistenza. Vi preghiamo di contattare il vostro "
            "referente commerciale; riprenderemo appena il contratto sarà di nuovo attivo."
        ),
    ),
    ShippedReply(
        key="out_of_scope.en",
        language="en",
        title="Out of scope",
        body=(
            "Dear ${customer_name},\n\n"
            "the request in case ${ref} (${summary}) is outside the scope of the "
            "service ${service_id} we provide, so we will close the case. If we "
            "misunderstood, reply to this message and tell us more."
        ),
    ),
    ShippedReply(
        key="out_of_scope.it",
        language="it",
        title="Fuori ambito",
        body=(
            "Gentile ${customer_name},\n\n"
            "la richiesta del caso ${ref} (${summary}) non rientra nel servizio "
            "${service_id} che forniamo, quindi chiuderemo il caso. Se abbiamo frainteso, "
            "rispondete a questo messaggio con maggiori dettagli."
        ),
    ),
    ShippedReply(
        key="closing_confirmed.en",
        language="en",
        title="Closing on your confirmation",
        body=(
            "Dear ${customer_name},\n\n"
            "thank you for confirming that the service is working again (restored at "
            "${restored_at}). We are closing case ${ref}."
        ),
    ),
    ShippedReply(
        key="closing_confirmed.it",
        language="it",
        title="Chiusura su vostra conferma",
        body=(
            "Gentile ${customer_name},\n\n"
            "grazie per averci confermato che il servizio funziona di nuovo (ripristinato "
            "il ${restored_at}). Chiudiamo il caso ${ref}."
        ),
    ),
    ShippedReply(
        key="auto_close_notice.en",
        language="en",
        title="Auto-close notice",
        body=(
            "Dear ${customer_name},\n\n"
            "case ${ref} has been waiting for your answer since ${waiting_since}. "
            "Without news it will close by itself at ${auto_close_at}; reply to keep it open."
        ),
    ),
    ShippedReply(
        key="auto_close_notice.it",
        language="it",
        title="Avviso di chiusura automatica",
        body=(
            "Gentile ${customer_name},\n\n"
            "il caso ${ref} attende una vostra risposta dal ${waiting_since}. "
            "Senza notizie si chiuderà da solo il ${auto_close_at}; rispondete per "
            "mantenerlo aperto."
        ),
    ),
)
