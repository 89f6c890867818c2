/**
 * Small building blocks. Styles are global classes in styles/global.css (btn, card, badge, …),
 * so plain elements look right too; page-specific styles go in a CSS module beside the page.
 */
import { useState, type ButtonHTMLAttributes, type ReactNode } from "react";
import { useI18n } from "@/i18n";
import { copyText } from "@/lib/clipboard";
import { toast } from "./Toast";

type ButtonVariant = "primary" | "secondary" | "danger" | "ghost";

export function Button({
  variant = "secondary",
  small = false,
  busy = false,
  className = "",
  children,
  disabled,
  ...rest
}: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: ButtonVariant; small?: boolean; busy?: boolean }) {
  return (
    <button
      type="button"
      className={`btn btn-${variant}${small ? " btn-small" : ""} ${className}`}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      {...rest}
    >
      {busy ? <span className="spinner-inline" aria-hidden /> : null}
      {children}
    </button>
  );
}

export function Card({ title, actions, children, className = "" }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`card ${className}`}>
      {title || actions ? (
        <header className="card-header">
          {title ? <h2 className="card-title">{title}</h2> : <span />}
          {actions ? <div className="card-actions">{actions}</div> : null}
        </header>
      ) : null}
      {children}
    </section>
  );
}

/** A page's title row, with its actions on the right. */
export function PageHeader({ title, actions }: { title: ReactNode; actions?: ReactNode }) {
  return (
    <div className="page-header">
      <h1>{title}</h1>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </div>
  );
}

/** A labelled form control: `<Field label={t("…")} hint={…}><input …/></Field>`. */
export function Field({ label, hint, children, className = "" }: { label: ReactNode; hint?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <label className={`field ${className}`}>
      <span className="field-label">{label}</span>
      {children}
      {hint ? <span className="field-hint">{hint}</span> : null}
    </label>
  );
}

export type Tone = "green" | "red" | "yellow" | "blue" | "grey" | "purple";

export function Badge({ tone = "grey", children }: { tone?: Tone; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

export function Spinner({ label }: { label?: string }) {
  const { t } = useI18n();
  return (
    <div className="spinner-block" role="status">
      <span className="spinner" aria-hidden />
      <span>{label ?? t("common.loading")}</span>
    </div>
  );
}

export function Empty({ children }: { children?: ReactNode }) {
  const { t } = useI18n();
  return <div className="empty">{children ?? t("common.empty")}</div>;
}

/**
 * One API's lists have no total: "next" is offered while a full page came back.
 * `page` is 0-based (the API's `p`).
 */
export function Pager({ page, hasNext, onPage }: { page: number; hasNext: boolean; onPage: (page: number) => void }) {
  const { t } = useI18n();
  return (
    <nav className="pager" aria-label={t("common.pagination")}>
      <Button small disabled={page <= 0} onClick={() => onPage(page - 1)}>
        ‹ {t("common.previous")}
      </Button>
      <span className="pager-page">{t("common.page", { page: page + 1 })}</span>
      <Button small disabled={!hasNext} onClick={() => onPage(page + 1)}>
        {t("common.next")} ›
      </Button>
    </nav>
  );
}

/** Copies `text`; shows a toast. When the browser refuses, shows the text to copy by hand. */
export function CopyButton({ text, label, small = true, testId }: { text: string; label?: ReactNode; small?: boolean; testId?: string }) {
  const { t } = useI18n();
  const [manual, setManual] = useState<string | null>(null);
  return (
    <>
      <Button
        small={small}
        data-testid={testId}
        data-copy={text}
        onClick={async () => {
          if (await copyText(text)) toast.success(t("common.copied"));
          else setManual(text);
        }}
      >
        {label ?? t("common.copy")}
      </Button>
      {manual !== null ? (
        <div className="manual-copy" role="dialog">
          <span>{t("common.copyManually")}</span>
          <input readOnly value={manual} onFocus={(e) => e.currentTarget.select()} autoFocus />
          <Button small onClick={() => setManual(null)}>
            {t("common.close")}
          </Button>
        </div>
      ) : null}
    </>
  );
}

/** Tabs as buttons; for tabs that are routes use <NavLink className="tab">. */
export function Tabs<T extends string>({ value, options, onChange }: { value: T; options: { value: T; label: ReactNode }[]; onChange: (value: T) => void }) {
  return (
    <div className="tabs" role="tablist">
      {options.map((option) => (
        <button
          key={option.value}
          role="tab"
          type="button"
          aria-selected={option.value === value}
          className={`tab${option.value === value ? " active" : ""}`}
          onClick={() => onChange(option.value)}
        >
          {option.label}
        </button>
      ))}
    </div>
  );
}
