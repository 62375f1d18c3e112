package httpapi

// adminMediaRoutes are the admin endpoints of query one media, quarantine (by ID, a user's, by content) and protect.
func (a *API) adminMediaRoutes() []adminRoute {
	return nil
}
