enum CustodyArchivePlaceholder {}
