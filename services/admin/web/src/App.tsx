/** The app shell: providers, the router built from routes.tsx, the layout and the toasts. */
import { Suspense, useEffect } from "react";
import { BrowserRouter, Navigate, Route, Routes, useSearchParams } from "react-router";
import { setApiHandlers } from "@/api/client";
import { AuthProvider, useAuth } from "@/auth";
import { RequireRole } from "@/auth/RequireRole";
import { Layout } from "@/components/Layout";
import { Spinner } from "@/components/ui";
import { toast, Toasts } from "@/components/Toast";
import { I18nProvider } from "@/i18n";
import { safeFrom } from "@/lib/navigation";
import NotFoundPage from "@/pages/NotFoundPage";
import SettingsShell from "@/pages/settings/SettingsShell";
import { routes, type PageRoute } from "@/routes";
import { ThemeProvider } from "@/theme";

/** Login and registration are for visitors: a logged-in user goes on to where they wanted. */
function GuestOnly({ children }: { children: React.ReactNode }) {
  const { ready, user } = useAuth();
  const [params] = useSearchParams();
  if (!ready) return <Spinner />;
  if (user !== null) {
    return <Navigate to={safeFrom(params.get("from"))} replace />;
  }
  return <>{children}</>;
}

function element(route: PageRoute) {
  const Page = route.page;
  let page = <Page />;
  if (route.settingsTab) page = <SettingsShell>{page}</SettingsShell>;
  if (route.access === "guest") return <GuestOnly>{page}</GuestOnly>;
  if (route.access === "public") return page;
  return <RequireRole min={route.access}>{page}</RequireRole>;
}

export default function App() {
  useEffect(() => setApiHandlers({ onError: toast.error }), []);
  return (
    <I18nProvider>
      <ThemeProvider>
        <BrowserRouter>
          <AuthProvider>
            <Routes>
              <Route element={<Layout />}>
                {routes.map((route) => (
                  <Route
                    key={route.path}
                    path={route.path}
                    element={<Suspense fallback={<Spinner />}>{element(route)}</Suspense>}
                  />
                ))}
                <Route path="*" element={<NotFoundPage />} />
              </Route>
            </Routes>
            <Toasts />
          </AuthProvider>
        </BrowserRouter>
      </ThemeProvider>
    </I18nProvider>
  );
}
