import { Navigate } from "react-router";

/** /setting opens the first tab. */
export default function SettingsIndex() {
  return <Navigate to="/setting/personal" replace />;
}
