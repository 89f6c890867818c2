import { Link } from "react-router";
import { useI18n } from "@/i18n";

/** What a user sees at a page their role may not open. */
export function Forbidden() {
  const { t } = useI18n();
  return (
    <div className="card center-block" data-testid="forbidden">
      <h1>{t("forbidden.title")}</h1>
      <p>{t("forbidden.text")}</p>
      <Link to="/dashboard">{t("nav.dashboard")}</Link>
    </div>
  );
}
