"""The report's words in English and Italian (the scheda temperature's terms)."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "HACCP temperature and food-safety records",
        "period": "Period",
        "generated": "Generated",
        "from_box": "from the venue's box",
        "from_cloud": "from the cloud copy of the venue's records",
        "chain": "Record chain",
        "intact": "INTACT",
        "broken": "BROKEN at record",
        "records_verified": "records verified",
        "anchor": "Last cloud anchor",
        "no_anchor": "not anchored yet",
        "method": "Monitoring method",
        "method_text": (
            "Automatic: each unit's sensor is read continuously by the BeerFlow box; one "
            "reading per recording period is kept (the last one, with the period's minimum and "
            "maximum). An alarm is raised when a reading stays outside the limit for the "
            "unit's delay; alarms are held back during defrost, door openings and start-up, "
            "each for a capped time. Staff acknowledge alarms and record corrective actions "
            "with their own PIN. Manual checks (opening, closing, probe readings, thermometer "
            "calibration) are recorded by staff with their PIN; a check not done by its "
            "deadline is recorded as missed. Every record is append-only and hash-chained "
            "(SHA-256); the chain head is signed and anchored in the cloud."
        ),
        "unit": "Unit",
        "type": "Type",
        "limits": "Critical limit",
        "sensor": "Sensor",
        "recording": "Recorded every",
        "minutes": "min",
        "suppression": "Alarm suppression",
        "none": "none",
        "daily": "Daily log (°C)",
        "date": "Date",
        "am": "AM",
        "pm": "PM",
        "min": "Min",
        "max": "Max",
        "readings": "Readings",
        "gaps": "Gaps",
        "gap_min": "Gap min",
        "excursions": "Excursions",
        "suppressed_note": (
            "* maximum above the limit without an alarm: during defrost, a door opening or "
            "start-up (alarms suppressed), or shorter than the alarm delay"
        ),
        "excursions_title": "Excursions and corrective actions",
        "start": "Start",
        "end": "End",
        "duration": "Duration",
        "peak": "Peak",
        "limit": "Limit",
        "acknowledged": "Acknowledged",
        "action": "Corrective action",
        "not_recorded": "NOT RECORDED",
        "ongoing": "ongoing",
        "product": "product",
        "verified": "verified at",
        "gaps_title": "Gaps in monitoring (no data; nothing interpolated)",
        "checks_title": "Checks done",
        "check": "Check",
        "time": "Time",
        "by": "By",
        "result": "Result",
        "details": "Details",
        "pass": "pass",
        "fail": "FAIL",
        "failed_items": "failed",
        "missed_title": "Checks due but not done (missed)",
        "due": "Due",
        "signoffs_title": "Manager verification",
        "signed": "Signed",
        "unsigned": "NOT SIGNED",
        "review": "Reviewed",
        "not_ended": "period not ended",
        "other_title": "Cooling, reheating, line cleaning",
        "no_data": "no data",
        "over_limit": "over the limit",
        "staff": "Staff who made records",
        "page": "Page",
        "without_action": "without corrective action",
        "excursion_word": "Excursions",
        "defrost": "defrost",
        "door": "door",
        "start-up": "start-up",
        "failed_checks": "failed checks",
        "missed": "missed checks",
    },
    "it": {
        "title": "Registro HACCP: temperature e autocontrollo",
        "period": "Periodo",
        "generated": "Generato il",
        "from_box": "dal dispositivo del locale",
        "from_cloud": "dalla copia cloud dei registri del locale",
        "chain": "Catena dei registri",
        "intact": "INTEGRA",
        "broken": "INTERROTTA al registro",
        "records_verified": "registrazioni verificate",
        "anchor": "Ultimo ancoraggio cloud",
        "no_anchor": "non ancora ancorata",
        "method": "Metodo di monitoraggio",
        "method_text": (
            "Automatico: il sensore di ogni apparecchiatura è letto di continuo dal dispositivo "
            "BeerFlow; per ogni periodo di registrazione si conserva una lettura (l'ultima, con "
            "minima e massima del periodo). L'allarme scatta quando la lettura resta fuori "
            "limite oltre il ritardo previsto; gli allarmi sono sospesi durante lo sbrinamento, "
            "le aperture della porta e l'avvio, sempre per un tempo massimo. Il personale "
            "conferma gli allarmi e registra le azioni correttive con il proprio PIN. I "
            "controlli manuali (apertura, chiusura, sonda, taratura del termometro) sono "
            "registrati con PIN; un controllo non eseguito entro l'orario è registrato come "
            "mancato. Ogni registrazione è non modificabile e concatenata (SHA-256); la testa "
            "della catena è firmata e ancorata nel cloud."
        ),
        "unit": "Apparecchiatura",
        "type": "Tipo",
        "limits": "Limite critico",
        "sensor": "Sensore",
        "recording": "Registrazione ogni",
        "minutes": "min",
        "suppression": "Sospensione allarmi",
        "none": "nessuna",
        "daily": "Scheda giornaliera (°C)",
        "date": "Data",
        "am": "Mattina",
        "pm": "Pomeriggio",
        "min": "Min",
        "max": "Max",
        "readings": "Letture",
        "gaps": "Lacune",
        "gap_min": "Min lacuna",
        "excursions": "Non conf.",
        "suppressed_note": (
            "* massima oltre il limite senza allarme: durante sbrinamento, apertura porta o "
            "avvio (allarmi sospesi), o per meno del ritardo d'allarme"
        ),
        "excursions_title": "Non conformità e azioni correttive",
        "start": "Inizio",
        "end": "Fine",
        "duration": "Durata",
        "peak": "Picco",
        "limit": "Limite",
        "acknowledged": "Presa in carico",
        "action": "Azione correttiva",
        "not_recorded": "NON REGISTRATA",
        "ongoing": "in corso",
        "product": "prodotto",
        "verified": "verifica a",
        "gaps_title": "Lacune nel monitoraggio (nessun dato; nulla interpolato)",
        "checks_title": "Controlli eseguiti",
        "check": "Controllo",
        "time": "Ora",
        "by": "Operatore",
        "result": "Esito",
        "details": "Dettagli",
        "pass": "conforme",
        "fail": "NON CONFORME",
        "failed_items": "non conformi",
        "missed_title": "Controlli previsti e non eseguiti (mancati)",
        "due": "Entro",
        "signoffs_title": "Verifica del responsabile",
        "signed": "Firmato",
        "unsigned": "NON FIRMATO",
        "review": "Esaminato",
        "not_ended": "periodo in corso",
        "other_title": "Abbattimento, riscaldamento, pulizia linee",
        "no_data": "nessun dato",
        "over_limit": "oltre il limite",
        "staff": "Personale che ha registrato",
        "page": "Pagina",
        "without_action": "senza azione correttiva",
        "excursion_word": "Non conformità",
        "defrost": "sbrinamento",
        "door": "porta",
        "start-up": "avvio",
        "failed_checks": "controlli non conformi",
        "missed": "controlli mancati",
    },
}

TYPES: dict[str, dict[str, str]] = {
    "en": {
        "cold_hold": "cold holding (fridge)",
        "freezer": "freezer",
        "hot_hold": "hot holding",
        "cellar": "beer cellar",
        "cooling": "cooling (probe)",
        "reheat": "reheating (probe)",
    },
    "it": {
        "cold_hold": "conservazione a freddo (frigorifero)",
        "freezer": "congelatore",
        "hot_hold": "mantenimento a caldo",
        "cellar": "cantina birra",
        "cooling": "abbattimento (sonda)",
        "reheat": "riscaldamento (sonda)",
    },
}
