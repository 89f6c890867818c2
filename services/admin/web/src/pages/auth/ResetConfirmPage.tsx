/** Password reset, step 2 (the e-mailed link /user/reset?email=&token=): the server sets a new password and shows it once. */
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api } from "@/api/client";
import { Button, CopyButton } from "@/components/ui";
import { useI18n } from "@/i18n";
import styles from "./auth.module.css";

export default function ResetConfirmPage() {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const email = params.get("email") ?? "";
  const token = params.get("token") ?? "";
  const [busy, setBusy] = useState(false);
  const [password, setPassword] = useState<string | null>(null);

  const confirm = async () => {
    setBusy(true);
    try {
      setPassword(await api.post<string>("/user/reset", { email, token }));
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={`card narrow ${styles.box}`}>
      <h1>{t("auth.resetTitle")}</h1>
      {!email || !token ? (
        <p>{t("auth.resetBadLink")}</p>
      ) : password === null ? (
        <div className="stack">
          <p className="break">{email}</p>
          <Button variant="primary" busy={busy} onClick={confirm}>
            {t("auth.resetConfirm")}
          </Button>
        </div>
      ) : (
        <div className="stack">
          <p>{t("auth.resetDone")}</p>
          <code className={styles.secret} data-testid="new-password">
            {password}
          </code>
          <CopyButton text={password} small={false} />
        </div>
      )}
      <div className={styles.links}>
        <Link to="/login">{t("auth.login")}</Link>
      </div>
    </div>
  );
}
