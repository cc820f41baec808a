"""Fills the French catalogue (locale/fr/LC_MESSAGES/django.po) from the table below, after
`python manage.py makemessages -l fr`; then `python manage.py compilemessages`. The table is
the reference: it replaces msgmerge's fuzzy guesses; strings missing from it are reported."""

from __future__ import annotations

import re
import sys
from pathlib import Path

FR = {
    "French": "Français",
    "English": "Anglais",
    "Re-queue the selected jobs": "Remettre en file les tâches de fond sélectionnées",
    "Replay the selected failed deliveries": "Renvoyer les livraisons échouées sélectionnées",
    "hospital": "hôpital",
    "medical practice": "cabinet médical",
    "health centre": "centre de santé",
    "home care service": "service de soins à domicile",
    "pharmacy": "pharmacie",
    "laboratory": "laboratoire",
    "regional health platform": "plateforme régionale de santé",
    "other": "autre",
    "name": "nom",
    "kind": "type",
    "FINESS number": "numéro FINESS",
    "general practitioner": "médecin généraliste",
    "specialist physician": "médecin spécialiste",
    "nurse": "infirmier·ère",
    "care coordinator": "coordinateur·rice de parcours",
    "pharmacist": "pharmacien·ne",
    "physiotherapist": "masseur-kinésithérapeute",
    "midwife": "sage-femme",
    "dentist": "chirurgien-dentiste",
    "podiatrist": "pédicure-podologue",
    "dietitian": "diététicien·ne",
    "psychologist": "psychologue",
    "profession": "profession",
    "specialty": "spécialité",
    "RPPS number": "numéro RPPS",
    "pathway roles": "rôles dans les parcours",
    "Roles the team can take.": "Rôles que l'équipe peut tenir.",
    "pathway role": "rôle dans le parcours",
    "draft": "brouillon",
    "requested": "demandée",
    "received": "reçue",
    "accepted": "acceptée",
    "rejected": "refusée",
    "ready": "à faire",
    "cancelled": "annulée",
    "in progress": "en cours",
    "on hold": "en attente",
    "failed": "échouée",
    "completed": "terminée",
    "this client is not a platform account": "ce client n'est pas un compte de plateforme",
    "this resource is not available to OAuth2 clients": (
        "cette ressource n'est pas accessible aux clients OAuth2"
    ),
    "this token lacks the scope %(scope)s": "ce jeton n'a pas la portée %(scope)s",
    "Disable the selected platforms (tokens revoked at once)": (
        "Désactiver les plateformes sélectionnées (jetons révoqués immédiatement)"
    ),
    "End the selected memberships (access revoked at once)": (
        "Mettre fin aux participations sélectionnées (accès retirés immédiatement)"
    ),
    "OAuth scopes": "portées OAuth",
    "reason": "motif",
    "Emergency access until %(until)s, read-only. It is recorded in the audit trail with your "
    "reason and shown to the patient's coordinator.": (
        "Accès en urgence jusqu'à %(until)s, en lecture seule. Il est enregistré dans la "
        "traçabilité avec votre motif et signalé au coordinateur ou à la coordinatrice du "
        "patient."
    ),
    "creation": "création",
    "claim": "prise en charge",
    "release": "remise à disposition",
    "put on hold": "mise en attente",
    "resumption": "reprise",
    "completion": "réalisation",
    "failure": "échec",
    "cancellation": "annulation",
    "reassignment": "réattribution",
    "entered in error": "saisie par erreur",
    "routine": "normale",
    "urgent": "urgente",
    "as soon as possible": "dès que possible",
    "immediately": "immédiate",
    "Text, or a mapping of language codes to text.": "Texte, ou texte par code de langue.",
    "URL": "URL",
    "event types": "types d'événements",
    "description": "description",
    "pending": "en attente",
    "succeeded": "réussie",
    "dropped": "abandonnée",
    "reminder": "rappel",
    "escalation": "escalade",
    "condition on measurements": "condition sur les mesures",
    "missing measurement": "mesure manquante",
    "male": "masculin",
    "female": "féminin",
    "unknown": "inconnu",
    "provisional": "provisoire",
    "recovered": "récupérée",
    "validated": "validée",
    "qualified": "qualifiée",
    "INS-NIR (test)": "INS-NIR (test)",
    "INS-NIA (test)": "INS-NIA (test)",
    "family name": "nom de naissance",
    "given names": "prénoms",
    "birth date": "date de naissance",
    "sex": "sexe",
    "birth place": "lieu de naissance",
    "INSEE commune code of the birth place (2A/2B for Corsica).": (
        "Code INSEE de la commune de naissance (2A/2B pour la Corse)."
    ),
    "phone": "téléphone",
    "email": "courriel",
    "address lines": "lignes d'adresse",
    "postal code": "code postal",
    "city": "commune",
    "INS number": "matricule INS",
    "NIR or NIA: 13 characters and the 2-digit key.": (
        "NIR ou NIA : 13 caractères et la clé à 2 chiffres."
    ),
    "INS OID": "OID de l'INS",
    "identity status": "statut de l'identité",
    "The patient's own portal account.": "Le compte du patient sur le portail.",
    "Can open any patient record in an emergency (audited)": (
        "Peut ouvrir tout dossier patient en urgence (tracé)"
    ),
    "sharing with the care team": "partage avec l'équipe de soins",
    "remote monitoring": "télésurveillance",
    "sharing with external platforms": "partage avec des plateformes externes",
    "active": "actif",
    "withdrawn": "retiré",
    "scale": "balance",
    "glucometer": "lecteur de glycémie",
    "blood pressure monitor": "tensiomètre",
    "pulse oximeter": "oxymètre de pouls",
    "thermometer": "thermomètre",
    "device": "appareil",
    "patient": "patient",
    "professional": "professionnel",
    "platform": "plateforme",
    "read": "lecture",
    "search": "recherche",
    "create": "création",
    "update": "modification",
    "delete": "suppression",
    "export": "export",
    "login": "connexion",
    "break the glass": "bris de glace",
    "grant access": "attribution d'accès",
    "revoke access": "retrait d'accès",
    "treatment": "soins",
    "care coordination": "coordination des soins",
    "emergency": "urgence",
    "patient's own access": "accès du patient",
    "administration": "administration",
    "audit": "audit",
    "success": "succès",
    "denied": "refusé",
    "not found": "introuvable",
    "error": "erreur",
    "web": "web",
    "admin": "administration",
    "command line": "ligne de commande",
    "system": "système",
    "My tasks": "Mes tâches",
    "Unclaimed tasks of my teams": "Tâches de mes équipes à prendre",
    "Overdue": "En retard",
    "The form was incomplete; nothing was changed.": (
        "Le formulaire était incomplet ; rien n'a été modifié."
    ),
    "Not done: %(reason)s": "Non effectué : %(reason)s",
    "Done.": "C'est fait.",
    "Not opened: %(reason)s": "Dossier non ouvert : %(reason)s",
    "Priority": "Priorité",
    "Task": "Tâche",
    "Patient": "Patient",
    "Due": "Échéance",
    "Status": "Statut",
    "Owner": "Responsable",
    "overdue": "en retard",
    "unclaimed": "non attribuée",
    "Nothing here.": "Rien ici.",
    "Alerts": "Alertes",
    "Alert inbox": "Alertes reçues",
    "Alert": "Alerte",
    "Last seen": "Dernière occurrence",
    "No alert.": "Aucune alerte.",
    "Skip to content": "Aller au contenu",
    "Main": "Principal",
    "Language": "Langue",
    "Change": "Changer",
    "Log out": "Se déconnecter",
    "Emergency access": "Accès en urgence",
    "Emergency access (break the glass)": "Accès en urgence (bris de glace)",
    "You are not in this patient's care team. If this is an emergency you may open the record: "
    "your name, the time and your reason are recorded in the audit trail and reviewed.": (
        "Vous ne faites pas partie de l'équipe de soins de ce patient. En cas d'urgence, vous "
        "pouvez ouvrir le dossier : votre nom, l'heure et votre motif sont enregistrés dans "
        "la traçabilité et contrôlés."
    ),
    "Reason for the emergency access": "Motif de l'accès en urgence",
    "Open the record (recorded)": "Ouvrir le dossier (accès tracé)",
    "Worklist": "Liste de travail",
    "Pathway library": "Bibliothèque de parcours",
    "Live updates: connected": "Mises à jour en direct : connecté",
    "Connection lost: updates paused, reconnecting…": (
        "Connexion perdue : mises à jour suspendues, reconnexion…"
    ),
    "Connection back: the page is up to date": "Connexion rétablie : la page est à jour",
    "Log in": "Connexion",
    "Your username and password did not match. Please try again.": (
        "Identifiant ou mot de passe incorrect. Veuillez réessayer."
    ),
    "Username": "Identifiant",
    "Password": "Mot de passe",
    "Checksum": "Empreinte",
    "Versions": "Versions",
    "Pathway": "Parcours",
    "Version": "Version",
    "No pathway is loaded yet: run python manage.py load_pathway FILE.": (
        "Aucun parcours chargé : lancez python manage.py load_pathway FICHIER."
    ),
    "Emergency access: this access is recorded in the audit trail with your reason.": (
        "Accès en urgence : cet accès est enregistré dans la traçabilité avec votre motif."
    ),
    "Birth date": "Date de naissance",
    "Sex": "Sexe",
    "INS": "INS",
    "Identity status": "Statut de l'identité",
    "Consent": "Consentement",
    "No consent recorded.": "Aucun consentement enregistré.",
    "Care team": "Équipe de soins",
    "Nobody yet.": "Personne pour l'instant.",
    "Current step": "Étape actuelle",
    "Pathway diagram, current step: %(state)s": "Schéma du parcours, étape actuelle : %(state)s",
    "Timeline": "Chronologie",
    "Tasks": "Tâches",
    "task": "tâche",
    "Measurements": "Mesures",
    "When": "Quand",
    "Value": "Valeur",
    "No measurement in the last 90 days.": "Aucune mesure ces 90 derniers jours.",
    "My care pathway": "Mon parcours de soins",
    "Hello %(name)s": "Bonjour %(name)s",
    "This care pathway is %(status)s.": "Ce parcours de soins est %(status)s.",
    "You are at this step:": "Vous en êtes à cette étape :",
    "Already done": "Déjà fait",
    "You have no care pathway at the moment.": "Vous n'avez pas de parcours de soins en ce moment.",
    "What comes next": "La suite",
    "by %(date)s": "d'ici le %(date)s",
    "Nothing for you to do right now: your care team will tell you.": (
        "Rien à faire pour vous en ce moment : votre équipe de soins vous préviendra."
    ),
    "What you have done": "Ce que vous avez fait",
    "Your care team": "Votre équipe de soins",
    "Your measurements": "Vos mesures",
    "Offered to": "Proposée à",
    "Note": "Note",
    "Actions": "Actions",
    "Note (for completing or holding)": "Note (pour terminer ou mettre en attente)",
    "Claim": "Prendre",
    "Start": "Commencer",
    "Resume": "Reprendre",
    "Put on hold": "Mettre en attente",
    "Complete": "Terminer",
    "Release": "Rendre",
    "Reassign to": "Réattribuer à",
    "Reassign": "Réattribuer",
    "History": "Historique",
    "Action": "Action",
    "By": "Par",
    "all": "toutes",
    "Filter": "Filtrer",
    "retired": "retiré",
    "The document as uploaded.": "Le document tel que déposé.",
    "SHA-256 of the document in canonical JSON.": "SHA-256 du document en JSON canonique.",
    "suspended": "suspendu",
    "Opaque reference to what the instance is about, for the app that started it.": (
        "Référence opaque à l'objet de l'instance, pour l'application qui l'a démarrée."
    ),
    "start": "démarrage",
    "transition": "transition",
    "status change": "changement de statut",
    "version migration": "migration de version",
    "scheduled": "programmé",
    "fired": "déclenché",
    "skipped": "ignoré",
    "Upload a pathway": "Déposer un parcours",
    "Uploading pathways needs the permission to manage them.": (
        "Déposer des parcours demande la permission de les gérer."
    ),
    "Line": "Ligne",
    "Source": "Source",
    "Problem": "Problème",
    "YAML or JSON file": "Fichier YAML ou JSON",
    "or paste the document": "ou collez le document",
    "Check and store as a draft": "Vérifier et enregistrer comme brouillon",
    "The document is too large (1 MB at most).": "Le document est trop gros (1 Mo au plus).",
    "Not uploaded: %(reason)s": "Non déposé : %(reason)s",
    "%(key)s version %(version)s is stored as a draft.": (
        "%(key)s version %(version)s est enregistré comme brouillon."
    ),
    "Not started: %(reason)s": "Non démarré : %(reason)s",
    "The pathway is started.": "Le parcours est démarré.",
    "Start a pathway": "Démarrer un parcours",
    "The %(shown)s most pressing are shown: filter by priority to see others.": (
        "Les %(shown)s plus urgentes sont affichées : filtrez par priorité pour voir les autres."
    ),
    "Something went wrong": "Une erreur s’est produite",
    "The page could not be shown because of an error on the server. Nothing that was already "
    "saved is lost, and the error has been logged. Try again in a moment; if it keeps "
    "happening, tell your support team.": (
        "La page n’a pas pu être affichée à cause d’une erreur du serveur. Rien de ce qui "
        "était déjà enregistré n’est perdu, et l’erreur a été consignée. Réessayez dans un "
        "instant ; si elle se reproduit, prévenez votre support."
    ),
    "Page not found": "Page introuvable",
    "This page does not exist, or you may not see it. Check the address, or go back to your "
    "home page.": (
        "Cette page n’existe pas, ou vous n’y avez pas accès. Vérifiez l’adresse, ou revenez "
        "à votre page d’accueil."
    ),
    "Try again": "Réessayer",
    "Back to the home page": "Retour à l’accueil",
    "Error %(status)s": "Erreur %(status)s",
    "The page could not be updated: trying again…": (
        "La page n’a pas pu être mise à jour : nouvel essai…"
    ),
    "Service temporarily unavailable": "Service momentanément indisponible",
    "Parcours cannot reach one of its services at the moment. Nothing was changed. Try again "
    "in a few seconds.": (
        "Parcours ne parvient pas à joindre l’un de ses services pour le moment. Rien n’a été "
        "modifié. Réessayez dans quelques secondes."
    ),
    "Deactivate the selected accounts (sessions and tokens revoked at once)": (
        "Désactiver les comptes sélectionnés (sessions et jetons révoqués immédiatement)"
    ),
    "Reactivate the selected accounts": "Réactiver les comptes sélectionnés",
    "may create tokens": "peut créer des jetons",
    "Your password has been changed. Your other sessions have been closed and your API "
    "tokens revoked.": (
        "Votre mot de passe a été changé. Vos autres sessions ont été fermées et vos jetons "
        "d’API révoqués."
    ),
    "Change your password": "Changer votre mot de passe",
    "Changing your password closes your other sessions and revokes your API tokens.": (
        "Changer votre mot de passe ferme vos autres sessions et révoque vos jetons d’API."
    ),
    "Current password": "Mot de passe actuel",
    "New password": "Nouveau mot de passe",
    "New password (again)": "Nouveau mot de passe (confirmation)",
    "Change password": "Changer le mot de passe",
    "Too many failed logins": "Trop de tentatives de connexion échouées",
    "Logging in with this username from here is blocked for a while after several failed "
    "attempts, to protect the account. Wait a few minutes before trying again; if you forgot "
    "your password, ask your coordinator.": (
        "La connexion avec cet identifiant depuis ce poste est bloquée un moment après "
        "plusieurs échecs, pour protéger le compte. Patientez quelques minutes avant de "
        "réessayer ; si vous avez oublié votre mot de passe, demandez à votre coordinateur·rice."
    ),
    "Emergency": "Urgence",
    "Parcours is not an emergency service.": "Parcours n’est pas un service d’urgence.",
    "Your care team does not watch your readings around the clock, and a reading sent here "
    "may be read only hours later.": (
        "Votre équipe de soins ne surveille pas vos mesures jour et nuit, et une mesure envoyée "
        "ici peut n’être lue que plusieurs heures après."
    ),
    "In an emergency, call 15 (SAMU), or 112 from any phone.": (
        "En cas d’urgence, appelez le 15 (SAMU), ou le 112 depuis n’importe quel téléphone."
    ),
    # Pathway monitoring: cited guidance, warnings, declared suspensions.
    "Guidance and warnings": "Recommandations et avertissements",
    "Used for:": "Utilisé pour :",
    "Monitoring warnings": "Avertissements de surveillance",
    "Monitoring suspended by step": "Surveillance suspendue, par étape",
    "Monitoring suspended: %(alert)s — %(reason)s": (
        "Surveillance suspendue : %(alert)s — %(reason)s"
    ),
    "Guidance cited": "Recommandations citées",
    "Monitoring warning: %(warning)s": "Avertissement de surveillance : %(warning)s",
    # Per-patient monitoring parameters (web/templates/web/_parameters.html, web/parameters.py)
    "Monitoring parameters": "Paramètres de surveillance",
    "Parameter": "Paramètre",
    "Default": "Valeur par défaut",
    "default": "par défaut",
    "Bounds": "Bornes",
    "Set by": "Modifié par",
    "New value": "Nouvelle valeur",
    "Reason": "Motif",
    "Parameter history": "Historique des paramètres",
    "Not changed: %(reason)s": "Non modifié : %(reason)s",
    "Parameter changed.": "Paramètre modifié.",
    # Triage bands (coordination.models.RiskBand)
    "low": "faible",
    "medium": "moyen",
    "high": "élevé",
    # Triage
    "High risk": "Risque élevé",
    "Moderate risk": "Risque modéré",
    "Low risk": "Risque faible",
    "score %(score)s": "score %(score)s",
    "Risk": "Risque",
    "Measurement": "Mesure",
}
PLURALS = {
    "%(points)s point": ("%(points)s point", "%(points)s points"),
    "%(n)d account deactivated.": ("%(n)d compte désactivé.", "%(n)d comptes désactivés."),
    "%(n)d account reactivated.": ("%(n)d compte réactivé.", "%(n)d comptes réactivés."),
    "%(n)d platform disabled.": ("%(n)d plateforme désactivée.", "%(n)d plateformes désactivées."),
    "%(n)d membership ended.": ("%(n)d participation terminée.", "%(n)d participations terminées."),
    "The pathway was not stored: %(counter)s problem.": (
        "Le parcours n'a pas été enregistré : %(counter)s problème.",
        "Le parcours n'a pas été enregistré : %(counter)s problèmes.",
    ),
    "%(count)d job re-queued.": (
        "%(count)d tâche de fond remise en file.",
        "%(count)d tâches de fond remises en file.",
    ),
    "%(count)d delivery replayed.": (
        "%(count)d livraison renvoyée.",
        "%(count)d livraisons renvoyées.",
    ),
    "%(counter)s monitoring warning": (
        "%(counter)s avertissement de surveillance",
        "%(counter)s avertissements de surveillance",
    ),
    "%(counter)s reference": ("%(counter)s référence", "%(counter)s références"),
}

ENTRY = re.compile(
    r'msgid ((?:"(?:[^"\\]|\\.)*"\n)+)(msgid_plural ((?:"(?:[^"\\]|\\.)*"\n)+))?'
    r'((?:msgstr(?:\[\d\])? (?:"(?:[^"\\]|\\.)*"\n)+)+)'
)


def _text(quoted: str) -> str:
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', quoted)).replace('\\"', '"')


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def fill(path: Path) -> list[str]:
    missing: list[str] = []
    source = path.read_text(encoding="utf-8")
    # msgmerge's guesses for new strings: drop the flag and the previous msgid, then fill.
    source = re.sub(r"^#\| .*\n", "", source, flags=re.MULTILINE)
    source = re.sub(r"^#, fuzzy\n", "", source, flags=re.MULTILINE)
    source = re.sub(r"^#, fuzzy, ", "#, ", source, flags=re.MULTILINE)

    def replace(match: re.Match[str]) -> str:
        msgid = _text(match.group(1))
        if not msgid:
            return match.group(0)
        if match.group(2):
            forms = PLURALS.get(msgid)
            if forms is None:
                missing.append(msgid)
                return match.group(0)
            return (
                f"msgid {match.group(1)}{match.group(2)}"
                f"msgstr[0] {_quote(forms[0])}\nmsgstr[1] {_quote(forms[1])}\n"
            )
        if msgid not in FR:
            missing.append(msgid)
            return match.group(0)
        return f"msgid {match.group(1)}msgstr {_quote(FR[msgid])}\n"

    path.write_text(ENTRY.sub(replace, source), encoding="utf-8")
    return missing


if __name__ == "__main__":
    po = Path(__file__).resolve().parent / "fr" / "LC_MESSAGES" / "django.po"
    left = fill(po)
    for msgid in left:
        print(f"untranslated: {msgid!r}", file=sys.stderr)
    sys.exit(1 if left else 0)
