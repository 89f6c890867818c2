import { useI18n, type MessageKey } from "@/i18n";

/**
 * The placeholder of a page not built yet: replace the page file that renders it
 * (src/pages/<area>/…Page.tsx) with the real page; the route and nav entry already exist.
 */
export function ComingSoon({ title }: { title: MessageKey }) {
  const { t } = useI18n();
  return (
    <div className="card center-block" data-testid="coming-soon">
      <h1>{t(title)}</h1>
      <p>{t("common.comingSoon")}</p>
    </div>
  );
}
