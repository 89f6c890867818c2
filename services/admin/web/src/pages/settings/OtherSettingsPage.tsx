/**
 * Other settings (root): the notice, the site (system name, logo, theme, footer), the about and
 * home page contents (Markdown, or a URL shown in a frame), the top-up and chat links.
 */
import { useI18n } from "@/i18n";
import { OptionSection, useOptions, type OptionField } from "./OptionForm";
import styles from "./settings.module.css";

const NOTICE: OptionField[] = [{ key: "Notice", kind: "textarea", label: "settings.Notice", hint: "settings.markdownHint", rows: 6 }];

const SITE: OptionField[] = [
  { key: "SystemName", kind: "text", label: "settings.SystemName" },
  { key: "Logo", kind: "text", label: "settings.Logo", hint: "settings.LogoHint", placeholder: "https://example.com/logo.png" },
  {
    key: "Theme",
    kind: "choice",
    label: "settings.Theme",
    hint: "settings.ThemeHint",
    choices: [
      { value: "default", label: "settings.themeDefault" },
      { value: "berry", label: "settings.themeBerry" },
      { value: "air", label: "settings.themeAir" },
    ],
  },
  { key: "Footer", kind: "textarea", label: "settings.Footer", hint: "settings.FooterHint", rows: 3 },
];

const CONTENT: OptionField[] = [
  { key: "HomePageContent", kind: "textarea", label: "settings.HomePageContent", hint: "settings.contentHint", rows: 8 },
  { key: "About", kind: "textarea", label: "settings.About", hint: "settings.contentHint", rows: 8 },
];

const LINKS: OptionField[] = [
  { key: "TopUpLink", kind: "url", label: "settings.TopUpLink", hint: "settings.TopUpLinkHint", placeholder: "https://shop.example.com" },
  { key: "ChatLink", kind: "url", label: "settings.ChatLink", hint: "settings.ChatLinkHint", placeholder: "https://chat.example.com" },
];

export default function OtherSettingsPage() {
  const { t } = useI18n();
  const options = useOptions();
  return (
    <div className={styles.page}>
      <OptionSection id="notice" title={t("settings.noticeSection")} fields={NOTICE} options={options} />
      <OptionSection id="site" title={t("settings.siteSection")} fields={SITE} options={options} />
      <OptionSection id="content" title={t("settings.contentSection")} fields={CONTENT} options={options} />
      <OptionSection id="links" title={t("settings.linksSection")} fields={LINKS} options={options} />
    </div>
  );
}
