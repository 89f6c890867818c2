/**
 * Shown instead of every page while the root account keeps the default password
 * (`/api/status` → root_password_is_default). The server renews this browser's session.
 */
import { useState, type FormEvent } from "react";
import { api } from "@/api/client";
import { useAuth } from "@/auth";
import { toast } from "@/components/Toast";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import styles from "./auth.module.css";

export default function ForcePasswordChange() {
  const { t } = useI18n();
  const { refreshStatus, refreshUser } = useAuth();
  const [password, setPassword] = useState("");
  const [password2, setPassword2] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (password.length < 8 || password.length > 20) {
      toast.error(t("auth.passwordLength"));
      return;
    }
    if (password !== password2) {
      toast.error(t("auth.passwordMismatch"));
      return;
    }
    setBusy(true);
    try {
      await api.put("/user/self", { password });
      toast.success(t("auth.passwordChanged"));
      await Promise.all([refreshStatus(), refreshUser()]);
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={`card narrow ${styles.box}`} data-testid="force-password-change">
      <h1>{t("auth.forceTitle")}</h1>
      <p className="muted">{t("auth.forceText")}</p>
      <form className="stack" onSubmit={submit}>
        <Field label={t("auth.newPassword")} hint={t("auth.passwordLength")}>
          <input name="new-password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <Field label={t("auth.passwordAgain")}>
          <input name="new-password-again" type="password" autoComplete="new-password" required value={password2} onChange={(e) => setPassword2(e.target.value)} />
        </Field>
        <Button type="submit" variant="primary" busy={busy} data-testid="force-password-submit">
          {t("common.save")}
        </Button>
      </form>
    </div>
  );
}
