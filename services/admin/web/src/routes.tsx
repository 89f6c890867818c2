/**
 * Every page of the UI, in one table: its path, who may open it, and its navigation entry.
 * The router (App.tsx), the navigation (components/Layout.tsx) and the settings tabs
 * (pages/settings/SettingsShell.tsx) are all derived from it. To add a page: write
 * src/pages/<area>/<Name>Page.tsx (default export) and add one entry here. See CONVENTIONS.md.
 *
 * Paths are One API's, so links from its e-mails and OAuth apps keep working
 * (/user/reset?email=&token=, /oauth/github, …).
 */
import { lazy, type ComponentType, type LazyExoticComponent } from "react";
import { ROLE, type Role, type Status } from "@/api/types";
import type { MessageKey } from "@/i18n";

export type Access = "public" | "guest" | Role;

export interface PageRoute {
  path: string;
  page: LazyExoticComponent<ComponentType>;
  /** "public": anyone; "guest": only when logged out (login, register); a role: at least it */
  access: Access;
  /** the page's navigation entry (sidebar), if it has one */
  nav?: { label: MessageKey; show?: (status: Status | null) => boolean };
  /** a tab of the settings page */
  settingsTab?: MessageKey;
}

export const routes: PageRoute[] = [
  // --- public -------------------------------------------------------------------------------
  { path: "/", page: lazy(() => import("@/pages/home/HomePage")), access: "public", nav: { label: "nav.home" } },
  { path: "/about", page: lazy(() => import("@/pages/home/AboutPage")), access: "public", nav: { label: "nav.about" } },
  { path: "/login", page: lazy(() => import("@/pages/auth/LoginPage")), access: "guest" },
  { path: "/register", page: lazy(() => import("@/pages/auth/RegisterPage")), access: "guest" },
  { path: "/reset", page: lazy(() => import("@/pages/auth/ResetRequestPage")), access: "public" },
  { path: "/user/reset", page: lazy(() => import("@/pages/auth/ResetConfirmPage")), access: "public" },
  { path: "/oauth/:provider", page: lazy(() => import("@/pages/auth/OAuthCallbackPage")), access: "public" },

  // --- every logged-in user -----------------------------------------------------------------
  { path: "/dashboard", page: lazy(() => import("@/pages/dashboard/DashboardPage")), access: ROLE.COMMON, nav: { label: "nav.dashboard" } },
  { path: "/channel", page: lazy(() => import("@/pages/channels/ChannelsPage")), access: ROLE.ADMIN, nav: { label: "nav.channels" } },
  { path: "/token", page: lazy(() => import("@/pages/tokens/TokensPage")), access: ROLE.COMMON, nav: { label: "nav.tokens" } },
  { path: "/log", page: lazy(() => import("@/pages/logs/LogsPage")), access: ROLE.COMMON, nav: { label: "nav.logs" } },
  { path: "/user", page: lazy(() => import("@/pages/users/UsersPage")), access: ROLE.ADMIN, nav: { label: "nav.users" } },
  { path: "/redemption", page: lazy(() => import("@/pages/redemptions/RedemptionsPage")), access: ROLE.ADMIN, nav: { label: "nav.redemptions" } },
  { path: "/topup", page: lazy(() => import("@/pages/topup/TopUpPage")), access: ROLE.COMMON, nav: { label: "nav.topup" } },
  {
    path: "/chat",
    page: lazy(() => import("@/pages/chat/ChatPage")),
    access: ROLE.COMMON,
    nav: { label: "nav.chat", show: (status) => Boolean(status?.chat_link) },
  },

  // --- settings: one nav entry (/setting opens the first tab), one tab per page ---------------
  { path: "/setting", page: lazy(() => import("@/pages/settings/SettingsIndex")), access: ROLE.COMMON, nav: { label: "nav.settings" } },
  { path: "/setting/personal", page: lazy(() => import("@/pages/settings/PersonalSettingsPage")), access: ROLE.COMMON, settingsTab: "settings.personal" },
  { path: "/setting/operation", page: lazy(() => import("@/pages/settings/OperationSettingsPage")), access: ROLE.ROOT, settingsTab: "settings.operation" },
  { path: "/setting/system", page: lazy(() => import("@/pages/settings/SystemSettingsPage")), access: ROLE.ROOT, settingsTab: "settings.system" },
  { path: "/setting/other", page: lazy(() => import("@/pages/settings/OtherSettingsPage")), access: ROLE.ROOT, settingsTab: "settings.other" },
];

export function allowed(access: Access, role: number | null): boolean {
  if (access === "public") return true;
  if (access === "guest") return role === null;
  return role !== null && role >= access;
}
