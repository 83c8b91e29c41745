-- 0012: an identity provider's user is bound to a local user by the token's
-- issuer and subject, not by email: a token naming someone else's email no
-- longer becomes that user. Users made before have no binding; their first
-- token after this binds them by the rules of store_user_idp_find (a
-- verified email of a member).
ALTER TABLE users ADD COLUMN idp_issuer TEXT;
ALTER TABLE users ADD COLUMN idp_subject TEXT;
CREATE UNIQUE INDEX users_idp_identity ON users (org_id, idp_issuer, idp_subject) WHERE idp_subject IS NOT NULL;
