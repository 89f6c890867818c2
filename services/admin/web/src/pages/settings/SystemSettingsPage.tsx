/**
 * System settings (root): server address, login and registration switches, e-mail verification
 * and the domain whitelist, SMTP, GitHub / OIDC / Lark / WeChat sign-in, Turnstile, the message
 * pusher. A switch is saved with the settings it needs, so one Save can fill them in and turn it
 * on (the server refuses a switch whose settings are missing, with its reason).
 */
import { useI18n } from "@/i18n";
import { OptionSection, useOptions, type OptionField } from "./OptionForm";
import styles from "./settings.module.css";

const GENERAL: OptionField[] = [
  { key: "ServerAddress", kind: "url", label: "settings.ServerAddress", hint: "settings.ServerAddressHint", placeholder: "https://api.example.com" },
];

const LOGIN: OptionField[] = [
  { key: "PasswordLoginEnabled", kind: "bool", label: "settings.PasswordLoginEnabled" },
  { key: "PasswordRegisterEnabled", kind: "bool", label: "settings.PasswordRegisterEnabled" },
  { key: "RegisterEnabled", kind: "bool", label: "settings.RegisterEnabled", hint: "settings.RegisterEnabledHint" },
];

const EMAIL: OptionField[] = [
  { key: "EmailVerificationEnabled", kind: "bool", label: "settings.EmailVerificationEnabled", hint: "settings.EmailVerificationEnabledHint" },
  { key: "EmailDomainRestrictionEnabled", kind: "bool", label: "settings.EmailDomainRestrictionEnabled" },
  { key: "EmailDomainWhitelist", kind: "textarea", label: "settings.EmailDomainWhitelist", hint: "settings.EmailDomainWhitelistHint", rows: 3 },
];

const SMTP: OptionField[] = [
  { key: "SMTPServer", kind: "text", label: "settings.SMTPServer", placeholder: "smtp.example.com" },
  { key: "SMTPPort", kind: "int", label: "settings.SMTPPort", min: 1, max: 65535 },
  { key: "SMTPAccount", kind: "text", label: "settings.SMTPAccount" },
  { key: "SMTPFrom", kind: "text", label: "settings.SMTPFrom", hint: "settings.SMTPFromHint" },
  { key: "SMTPToken", kind: "secret", label: "settings.SMTPToken" },
];

const GITHUB: OptionField[] = [
  { key: "GitHubOAuthEnabled", kind: "bool", label: "settings.GitHubOAuthEnabled" },
  { key: "GitHubClientId", kind: "text", label: "settings.clientId" },
  { key: "GitHubClientSecret", kind: "secret", label: "settings.clientSecret" },
];

const OIDC: OptionField[] = [
  { key: "OidcEnabled", kind: "bool", label: "settings.OidcEnabled" },
  { key: "OidcClientId", kind: "text", label: "settings.clientId" },
  { key: "OidcClientSecret", kind: "secret", label: "settings.clientSecret" },
  { key: "OidcWellKnown", kind: "url", label: "settings.OidcWellKnown", placeholder: "https://issuer.example.com/.well-known/openid-configuration" },
  { key: "OidcAuthorizationEndpoint", kind: "url", label: "settings.OidcAuthorizationEndpoint" },
  { key: "OidcTokenEndpoint", kind: "url", label: "settings.OidcTokenEndpoint" },
  { key: "OidcUserinfoEndpoint", kind: "url", label: "settings.OidcUserinfoEndpoint" },
];

const LARK: OptionField[] = [
  { key: "LarkClientId", kind: "text", label: "settings.LarkClientId", hint: "settings.LarkClientIdHint" },
  { key: "LarkClientSecret", kind: "secret", label: "settings.LarkClientSecret" },
];

const WECHAT: OptionField[] = [
  { key: "WeChatAuthEnabled", kind: "bool", label: "settings.WeChatAuthEnabled" },
  { key: "WeChatServerAddress", kind: "url", label: "settings.WeChatServerAddress", placeholder: "https://wechat.example.com" },
  { key: "WeChatServerToken", kind: "secret", label: "settings.WeChatServerToken" },
  { key: "WeChatAccountQRCodeImageURL", kind: "url", label: "settings.WeChatAccountQRCodeImageURL" },
];

const TURNSTILE: OptionField[] = [
  { key: "TurnstileCheckEnabled", kind: "bool", label: "settings.TurnstileCheckEnabled", hint: "settings.TurnstileCheckEnabledHint" },
  { key: "TurnstileSiteKey", kind: "text", label: "settings.TurnstileSiteKey" },
  { key: "TurnstileSecretKey", kind: "secret", label: "settings.TurnstileSecretKey" },
];

const PUSHER: OptionField[] = [
  { key: "MessagePusherAddress", kind: "url", label: "settings.MessagePusherAddress", placeholder: "https://msgpusher.example.com/push/root" },
  { key: "MessagePusherToken", kind: "secret", label: "settings.MessagePusherToken" },
];

export default function SystemSettingsPage() {
  const { t } = useI18n();
  const options = useOptions();
  const server = (options.values?.ServerAddress || window.location.origin).replace(/\/+$/, "");
  const callback = (provider: string) => (
    <p className={`muted small ${styles.note}`}>
      {t("settings.callbackUrl")} <code>{`${server}/oauth/${provider}`}</code>
    </p>
  );
  return (
    <div className={styles.page}>
      <OptionSection id="general" title={t("settings.systemGeneral")} fields={GENERAL} options={options} />
      <OptionSection id="login" title={t("settings.loginSection")} fields={LOGIN} options={options} />
      <OptionSection id="email" title={t("settings.emailSection")} fields={EMAIL} options={options} />
      <OptionSection id="smtp" title={t("settings.smtpSection")} description={t("settings.smtpNote")} fields={SMTP} options={options} />
      <OptionSection id="github" title={t("settings.githubSection")} description={t("settings.githubNote", { server })} fields={GITHUB} options={options}>
        {callback("github")}
      </OptionSection>
      <OptionSection id="oidc" title={t("settings.oidcSection")} fields={OIDC} options={options} wideFields={["OidcWellKnown"]}>
        {callback("oidc")}
      </OptionSection>
      <OptionSection id="lark" title={t("settings.larkSection")} fields={LARK} options={options}>
        {callback("lark")}
      </OptionSection>
      <OptionSection id="wechat" title={t("settings.wechatSection")} description={t("settings.wechatNote")} fields={WECHAT} options={options} />
      <OptionSection id="turnstile" title={t("settings.turnstileSection")} fields={TURNSTILE} options={options} />
      <OptionSection id="pusher" title={t("settings.pusherSection")} description={t("settings.pusherNote")} fields={PUSHER} options={options} />
    </div>
  );
}
