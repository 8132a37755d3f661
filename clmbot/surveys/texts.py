"""Every text a customer sees, in every language clmbot speaks: one catalogue.

A customer's language comes from their `locale` (the import, else Slack's `users.info`);
anything not in the catalogue falls back to English. A team can override any text per
language in `clmbot.toml` (`[surveys.texts.id] ask_reason = "…"`); an override may use only
the placeholders the original uses, so that a typo cannot break a message at send time.

Nothing here may mention internal data (risk, owner, notes): these texts go to customers.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

DEFAULT_LANGUAGE = "en"

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "Hi! A quick question for you:",
        "nps_question": "How likely are you to recommend {product} to a friend or colleague?",
        "nps_scale": "0 = not at all likely · 10 = extremely likely",
        "csat_question": "How satisfied are you with {product}?",
        "csat_scale": "1 = very dissatisfied · 5 = very satisfied",
        "stop_hint": "Reply *stop* and we will not ask you again.",
        "chosen": "You chose *{score}*. Thank you!",
        "ask_reason": "What is the main reason for your score? Just reply here.",
        "changed": "Got it: your answer is now *{score}*.",
        "too_late": "Your answer of *{score}* is already recorded. Thank you!",
        "thanks_comment": "Thank you for telling us. It helps us a lot.",
        "not_a_score": (
            "Please pick a score with the buttons above, or reply with a number from {low} "
            "to {high}."
        ),
        "reminder": "A gentle reminder: we would love to hear from you. It takes one click.",
        "closed": "This survey has closed. Thank you all the same!",
        "opted_out": "Done: you will not get any more surveys from us.",
        "nothing_open": (
            "Thank you for your message! I am an automated survey assistant and cannot answer "
            "here; your usual contact will be glad to help."
        ),
        "product": "us",
    },
    "id": {
        "greeting": "Halo! Ada satu pertanyaan singkat untuk Anda:",
        "nps_question": (
            "Seberapa besar kemungkinan Anda merekomendasikan {product} kepada teman atau kolega?"
        ),
        "nps_scale": "0 = sangat tidak mungkin · 10 = sangat mungkin",
        "csat_question": "Seberapa puas Anda dengan {product}?",
        "csat_scale": "1 = sangat tidak puas · 5 = sangat puas",
        "stop_hint": "Balas *berhenti* jika Anda tidak ingin ditanya lagi.",
        "chosen": "Anda memilih *{score}*. Terima kasih!",
        "ask_reason": "Apa alasan utama Anda memberi nilai tersebut? Cukup balas di sini.",
        "changed": "Baik, jawaban Anda sekarang *{score}*.",
        "too_late": "Jawaban Anda (*{score}*) sudah tercatat. Terima kasih!",
        "thanks_comment": "Terima kasih atas masukan Anda. Ini sangat membantu kami.",
        "not_a_score": (
            "Silakan pilih nilai dengan tombol di atas, atau balas dengan angka dari {low} "
            "sampai {high}."
        ),
        "reminder": (
            "Pengingat singkat: kami ingin sekali mendengar pendapat Anda. Cukup satu klik."
        ),
        "closed": "Survei ini sudah ditutup. Terima kasih!",
        "opted_out": "Baik, Anda tidak akan menerima survei lagi dari kami.",
        "nothing_open": (
            "Terima kasih atas pesan Anda! Saya asisten survei otomatis dan tidak dapat menjawab "
            "di sini; kontak Anda yang biasa akan dengan senang hati membantu."
        ),
        "product": "kami",
    },
}

# Words that opt a customer out of every future survey, in any language we speak.
STOP_WORDS = frozenset(("stop", "unsubscribe", "berhenti", "stop surveys", "jangan kirim lagi"))


def placeholders(text: str) -> set[str]:
    """The `{names}` a text uses; `{}`, `{0}` and `{x!r:>9}` are refused (ValueError): a text
    is filled by name, with nothing else."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}}}")
        names.add(name)
    return names


def language_of(locale: str | None) -> str:
    """`id-ID`, `in`, `id_ID` → `id`; anything unknown → English."""
    if not locale:
        return DEFAULT_LANGUAGE
    primary = locale.replace("_", "-").split("-")[0].lower()
    primary = {"in": "id"}.get(primary, primary)  # Java's old code for Indonesian
    return primary if primary in CATALOGUE else DEFAULT_LANGUAGE


class Texts:
    """The catalogue with a team's overrides; `say(language, key, **values)`."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._table = {lang: dict(texts) for lang, texts in CATALOGUE.items()}
        for lang, texts in (overrides or {}).items():
            self._table.setdefault(lang, {}).update(texts)

    def say(self, language: str, key: str, **values: object) -> str:
        table = self._table.get(language) or self._table[DEFAULT_LANGUAGE]
        text = table.get(key) or self._table[DEFAULT_LANGUAGE][key]
        return text.format(**values)

    def languages(self) -> list[str]:
        return sorted(self._table)


def check_overrides(overrides: object) -> tuple[dict[str, dict[str, str]], str | None]:
    """The overrides from `[surveys.texts.<lang>]`, or what is wrong with them."""
    if not isinstance(overrides, dict):
        return {}, "surveys.texts must be tables per language, e.g. [surveys.texts.id]"
    checked: dict[str, dict[str, str]] = {}
    for lang, texts in overrides.items():
        if lang not in CATALOGUE:
            return {}, (
                f"surveys.texts.{lang}: clmbot speaks {', '.join(sorted(CATALOGUE))}; override "
                "their texts (a new language is a new table in clmbot/surveys/texts.py)"
            )
        if not isinstance(texts, dict):
            return {}, f"surveys.texts.{lang} must be a table of texts"
        for key, text in texts.items():
            if key not in CATALOGUE[DEFAULT_LANGUAGE]:
                known = ", ".join(sorted(CATALOGUE[DEFAULT_LANGUAGE]))
                return {}, f"surveys.texts.{lang}.{key} is not a text clmbot sends; known: {known}"
            if not isinstance(text, str) or not text.strip():
                return {}, f"surveys.texts.{lang}.{key} must be a non-empty string"
            try:
                used = placeholders(text)
            except ValueError:
                return {}, (
                    f"surveys.texts.{lang}.{key} has an unmatched {{ or }}, or a placeholder "
                    "without a name; write {{ and }} for braces"
                )
            allowed = placeholders(CATALOGUE[DEFAULT_LANGUAGE][key])
            if used - allowed:
                extra = ", ".join("{" + p + "}" for p in sorted(used - allowed))
                can = ", ".join("{" + p + "}" for p in sorted(allowed)) or "none"
                return {}, f"surveys.texts.{lang}.{key} uses {extra}; it may use {can}"
            checked.setdefault(lang, {})[key] = text
    return checked, None
