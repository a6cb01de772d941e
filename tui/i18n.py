"""The terminal's words in English and Italian; the venue picks one, staff can switch at runtime.

Keys are stable identifiers; a missing key falls back to English, then to the key itself, so a
half-translated catalogue shows something readable rather than crashing during service."""

from __future__ import annotations

from typing import Any, Literal

Locale = Literal["en", "it"]
LOCALES: tuple[Locale, ...] = ("en", "it")

EN: dict[str, str] = {
    "app.title": "BeerFlow kitchen",
    "nav.overview": "Overview",
    "nav.alarms": "Alarms",
    "nav.haccp": "HACCP",
    "nav.devices": "Devices",
    "nav.stock": "Stock",
    "nav.sync": "Sync",
    "key.language": "Italiano",
    "key.quit": "Quit",
    "status.ok": "OK",
    "status.warning": "CHECK",
    "status.alarm": "ALARM",
    "status.suppressed": "PAUSED",
    "status.offline": "NO SIGNAL",
    "status.no_data": "NO DATA",
    "reason.defrost": "defrost",
    "reason.above_limit": "above limit",
    "reason.below_limit": "below limit",
    "reason.device_alarm": "controller alarm",
    "reason.active_alarm": "active alarm",
    "tile.limit_max": "limit ≤ {limit}",
    "tile.limit_min": "limit ≥ {limit}",
    "tile.no_limit": "no limit set",
    "summary.all_ok": "All {total} units safe",
    "summary.problems": "{alarm} alarm · {warning} to check · {offline} without signal",
    "summary.waiting": "Waiting for the agent…",
    "banner.reconnecting": "⟳ Reconnecting to the agent… ({error})",
    "banner.reconnected": "Connected to the agent again",
    "banner.offline": "☁ Cloud unreachable — working offline. "
    "{backlog} records waiting, oldest {age}.",
    "banner.not_available": "Not available on this agent (no {what} service yet).",
    "devices.col.device": "Device",
    "devices.col.zone": "Zone",
    "devices.col.state": "State",
    "devices.col.last_seen": "Last seen",
    "devices.col.battery": "Battery",
    "devices.col.signal": "Signal",
    "devices.col.polls": "Polls",
    "devices.col.errors": "Errors",
    "devices.col.malformed": "Bad data",
    "devices.col.last_error": "Last error",
    "devices.online": "● online",
    "devices.offline": "○ offline",
    "devices.disabled": "– disabled",
    "age.never": "never",
    "age.s": "{n} s ago",
    "age.m": "{n} min ago",
    "age.h": "{n} h ago",
    "age.d": "{n} d ago",
    "stock.col.item": "Item",
    "stock.col.remaining": "Remaining",
    "stock.col.updated": "Updated",
    "stock.none": "No keg or scale devices at this venue.",
    "sync.online": "● Online: the cloud is reachable",
    "sync.offline": "○ Offline: records are kept on this box and sent later",
    "sync.last_success": "Last successful sync: {age}",
    "sync.col.stream": "Stream",
    "sync.col.backlog": "Waiting",
    "alarms.col.severity": "Severity",
    "alarms.col.unit": "Unit",
    "alarms.col.what": "What",
    "alarms.col.since": "Since",
    "alarms.col.state": "State",
    "alarms.none": "No active alarms.",
    "alarms.ack": "Acknowledge",
    "alarms.action": "Corrective action",
    "alarms.select": "Select an alarm first.",
    "alarms.acked": "Alarm acknowledged by {staff}.",
    "alarms.action_saved": "Corrective action recorded in the HACCP log.",
    "alarm.state.active": "▲ active",
    "alarm.state.acknowledged": "✓ acknowledged",
    "alarm.state.cleared": "○ cleared",
    "severity.critical": "‼ critical",
    "severity.warning": "! warning",
    "severity.info": "i info",
    "haccp.due": "Checks due today",
    "haccp.col.check": "Check",
    "haccp.col.unit": "Unit",
    "haccp.col.due": "Due",
    "haccp.col.done": "Done",
    "haccp.done_by": "✓ {staff}",
    "haccp.not_done": "✗ not done",
    "haccp.probe": "Probe reading",
    "haccp.log": "Today's log",
    "haccp.export": "Export",
    "haccp.exported": "Report written to {path}",
    "haccp.probe_saved": "Probe reading recorded: {value}",
    "haccp.gaps": "Gaps: {gaps}",
    "haccp.no_gaps": "No gaps in the record.",
    "form.staff": "Staff ID",
    "form.pin": "PIN",
    "form.ok": "Confirm",
    "form.cancel": "Cancel",
    "form.what_done": "What was done",
    "form.disposition": "Product",
    "form.verification": "Verification reading",
    "form.unit": "Unit",
    "form.value": "Temperature",
    "form.required": "Staff ID and PIN are required.",
    "form.bad_number": "Enter a number, e.g. 3.5",
    "disposition.kept": "Kept (safe)",
    "disposition.moved": "Moved to another unit",
    "disposition.discarded": "Discarded",
    "error.rejected": "Refused by the agent: {reason}",
}

IT: dict[str, str] = {
    "app.title": "BeerFlow cucina",
    "nav.overview": "Panoramica",
    "nav.alarms": "Allarmi",
    "nav.haccp": "HACCP",
    "nav.devices": "Dispositivi",
    "nav.stock": "Scorte",
    "nav.sync": "Sincronia",
    "key.language": "English",
    "key.quit": "Esci",
    "status.ok": "OK",
    "status.warning": "VERIFICA",
    "status.alarm": "ALLARME",
    "status.suppressed": "IN PAUSA",
    "status.offline": "SENZA SEGNALE",
    "status.no_data": "NESSUN DATO",
    "reason.defrost": "sbrinamento",
    "reason.above_limit": "sopra il limite",
    "reason.below_limit": "sotto il limite",
    "reason.device_alarm": "allarme del controllore",
    "reason.active_alarm": "allarme attivo",
    "tile.limit_max": "limite ≤ {limit}",
    "tile.limit_min": "limite ≥ {limit}",
    "tile.no_limit": "nessun limite",
    "summary.all_ok": "Tutte le {total} unità sono sicure",
    "summary.problems": "{alarm} in allarme · {warning} da verificare · {offline} senza segnale",
    "summary.waiting": "In attesa dell'agente…",
    "banner.reconnecting": "⟳ Riconnessione all'agente in corso… ({error})",
    "banner.reconnected": "Di nuovo connesso all'agente",
    "banner.offline": "☁ Cloud non raggiungibile — lavoro offline. {backlog} record in attesa, "
    "il più vecchio {age}.",
    "banner.not_available": "Non disponibile su questo agente (servizio {what} assente).",
    "devices.col.device": "Dispositivo",
    "devices.col.zone": "Zona",
    "devices.col.state": "Stato",
    "devices.col.last_seen": "Ultimo contatto",
    "devices.col.battery": "Batteria",
    "devices.col.signal": "Segnale",
    "devices.col.polls": "Letture",
    "devices.col.errors": "Errori",
    "devices.col.malformed": "Dati errati",
    "devices.col.last_error": "Ultimo errore",
    "devices.online": "● in linea",
    "devices.offline": "○ non in linea",
    "devices.disabled": "– disattivato",
    "age.never": "mai",
    "age.s": "{n} s fa",
    "age.m": "{n} min fa",
    "age.h": "{n} h fa",
    "age.d": "{n} g fa",
    "stock.col.item": "Articolo",
    "stock.col.remaining": "Rimanente",
    "stock.col.updated": "Aggiornato",
    "stock.none": "Nessun fusto o bilancia in questo locale.",
    "sync.online": "● In linea: il cloud è raggiungibile",
    "sync.offline": "○ Offline: i record restano qui e partono più tardi",
    "sync.last_success": "Ultima sincronizzazione riuscita: {age}",
    "sync.col.stream": "Flusso",
    "sync.col.backlog": "In attesa",
    "alarms.col.severity": "Gravità",
    "alarms.col.unit": "Unità",
    "alarms.col.what": "Cosa",
    "alarms.col.since": "Da",
    "alarms.col.state": "Stato",
    "alarms.none": "Nessun allarme attivo.",
    "alarms.ack": "Conferma",
    "alarms.action": "Azione correttiva",
    "alarms.select": "Seleziona prima un allarme.",
    "alarms.acked": "Allarme confermato da {staff}.",
    "alarms.action_saved": "Azione correttiva registrata nel registro HACCP.",
    "alarm.state.active": "▲ attivo",
    "alarm.state.acknowledged": "✓ confermato",
    "alarm.state.cleared": "○ rientrato",
    "severity.critical": "‼ critico",
    "severity.warning": "! avviso",
    "severity.info": "i info",
    "haccp.due": "Controlli di oggi",
    "haccp.col.check": "Controllo",
    "haccp.col.unit": "Unità",
    "haccp.col.due": "Scadenza",
    "haccp.col.done": "Fatto",
    "haccp.done_by": "✓ {staff}",
    "haccp.not_done": "✗ da fare",
    "haccp.probe": "Lettura sonda",
    "haccp.log": "Registro di oggi",
    "haccp.export": "Esporta",
    "haccp.exported": "Rapporto scritto in {path}",
    "haccp.probe_saved": "Lettura sonda registrata: {value}",
    "haccp.gaps": "Buchi: {gaps}",
    "haccp.no_gaps": "Nessun buco nel registro.",
    "form.staff": "Codice operatore",
    "form.pin": "PIN",
    "form.ok": "Conferma",
    "form.cancel": "Annulla",
    "form.what_done": "Cosa è stato fatto",
    "form.disposition": "Prodotto",
    "form.verification": "Lettura di verifica",
    "form.unit": "Unità",
    "form.value": "Temperatura",
    "form.required": "Codice operatore e PIN sono obbligatori.",
    "form.bad_number": "Inserisci un numero, es. 3,5",
    "disposition.kept": "Tenuto (sicuro)",
    "disposition.moved": "Spostato in un'altra unità",
    "disposition.discarded": "Buttato",
    "error.rejected": "Rifiutato dall'agente: {reason}",
}

CATALOGUES: dict[Locale, dict[str, str]] = {"en": EN, "it": IT}


class Translator:
    def __init__(self, locale: Locale = "en") -> None:
        self.locale: Locale = locale

    def __call__(self, key: str, **kw: Any) -> str:
        text = CATALOGUES[self.locale].get(key) or EN.get(key) or key
        return text.format(**kw) if kw else text

    def toggle(self) -> Locale:
        self.locale = LOCALES[(LOCALES.index(self.locale) + 1) % len(LOCALES)]
        return self.locale

    def number(self, value: float, decimals: int = 1) -> str:
        """Italian writes the decimal comma."""
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if self.locale == "it" else text

    def age(self, seconds: float | None) -> str:
        if seconds is None:
            return self("age.never")
        s = max(0, int(seconds))
        if s < 90:
            return self("age.s", n=s)
        if s < 5400:
            return self("age.m", n=s // 60)
        if s < 172800:
            return self("age.h", n=s // 3600)
        return self("age.d", n=s // 86400)
