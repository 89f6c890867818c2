/**
 * Chinese and English. `const { t, lang, setLang } = useI18n()`; `t("nav.tokens")`,
 * `t("tokens.deleted", { name })` fills `{name}`. Keys live in zh.ts (the source of truth:
 * its keys are the type `MessageKey`) and en.ts (must have every key, or tsc fails).
 * The language comes from localStorage, else the browser; switching persists it.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import en from "./en";
import zh, { type MessageKey } from "./zh";

export type { MessageKey };
export type Lang = "zh" | "en";
export const LANGS: readonly Lang[] = ["zh", "en"];
const STORAGE_KEY = "oneapi.lang";
const dictionaries: Record<Lang, Record<MessageKey, string>> = { zh, en };

export type Vars = Record<string, string | number>;

function detect(): Lang {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored === "zh" || stored === "en") return stored;
  } catch {
    // storage disabled: fall through to the browser's languages
  }
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const tag of preferred) {
    const lower = (tag || "").toLowerCase();
    if (lower.startsWith("zh")) return "zh";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

let current: Lang = detect();

function format(text: string, vars?: Vars): string {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (match, name: string) =>
    name in vars ? String(vars[name]) : match,
  );
}

/** The text of `key`: this language's, else Chinese, else the key itself (never a crash). */
function lookup(lang: Lang, key: MessageKey): string {
  return dictionaries[lang][key] ?? dictionaries.zh[key] ?? key;
}

/** For code outside React (the API client): the current language's text. */
export function translate(key: MessageKey, vars?: Vars): string {
  return format(lookup(current, key), vars);
}

interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: (key: MessageKey, vars?: Vars) => string;
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(current);
  const setLang = useCallback((next: Lang) => {
    current = next;
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // not persisted; still switched
    }
    setLangState(next);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  }, [lang]);
  const value = useMemo<I18n>(
    () => ({ lang, setLang, t: (key, vars) => format(lookup(lang, key), vars) }),
    [lang, setLang],
  );
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (value === null) throw new Error("useI18n outside I18nProvider");
  return value;
}
