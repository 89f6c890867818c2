/** Password reset, step 1: mail a reset link (the answer never says whether the address exists). */
import { useCallback, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api } from "@/api/client";
import { toast } from "@/components/Toast";
import { Turnstile, useTurnstileEnabled } from "@/components/Turnstile";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import styles from "./auth.module.css";

export default function ResetRequestPage() {
  const { t } = useI18n();
  const [email, setEmail] = useState("");
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const [turnstileToken, setTurnstileToken] = useState("");
  const turnstile = useTurnstileEnabled();
  const onToken = useCallback((token: string) => setTurnstileToken(token), []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (turnstile && !turnstileToken) {
      toast.info(t("auth.turnstileWait"));
      return;
    }
    setBusy(true);
    try {
      await api.get("/reset_password", { query: { email: email.trim(), turnstile: turnstileToken } });
      setSent(true);
      toast.success(t("auth.resetSent"));
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={`card narrow ${styles.box}`}>
      <h1>{t("auth.resetTitle")}</h1>
      <form className="stack" onSubmit={submit}>
        <Field label={t("auth.email")}>
          <input name="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Turnstile onToken={onToken} />
        {sent ? <p className="muted small">{t("auth.resetSent")}</p> : null}
        <Button type="submit" variant="primary" busy={busy}>
          {t("auth.resetSend")}
        </Button>
      </form>
      <div className={styles.links}>
        <Link to="/login">{t("auth.login")}</Link>
      </div>
    </div>
  );
}
