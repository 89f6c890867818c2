import { Link } from "react-router";
import { useI18n } from "@/i18n";

export default function NotFoundPage() {
  const { t } = useI18n();
  return (
    <div className="card center-block" data-testid="not-found">
      <h1>404</h1>
      <p>{t("notFound.text")}</p>
      <Link to="/">{t("nav.home")}</Link>
    </div>
  );
}
