-- Arbitration between campaigns: which running campaigns still have an
-- HCP pending (a campaign of higher priority gets the HCP's slot first).
CREATE INDEX campaign_member_hcp_pending ON campaign_member (hcp) WHERE outcome = 'pending';
